//! Checkpoints (issue 20): a copy taken while writes go on opens and holds
//! exactly what a snapshot at its sequence number reads, in every
//! keyspace; to a directory (hard links, or copies) and as a stream;
//! existing or half-written targets are refused.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use strata::fs::{FileSystem, MemFileSystem};
use strata::{
    install_checkpoint_with, CheckpointInfo, CheckpointOptions, Db, Error, Options, Snapshot,
    WriteOptions,
};

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

const KEYSPACE: &str = "second";

/// Every entry of the default keyspace and of [`KEYSPACE`] in `db`.
fn contents(db: &Db) -> (Entries, Entries) {
    let ks = db.keyspace(KEYSPACE).unwrap();
    let collect = |it: strata::Iter| -> Entries {
        it.map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()
            .unwrap()
    };
    (collect(db.iter()), collect(ks.iter()))
}

/// What `snapshot` reads in the default keyspace and in [`KEYSPACE`].
fn snapshot_contents(db: &Db, snapshot: &Snapshot) -> (Entries, Entries) {
    let ks = db.keyspace(KEYSPACE).unwrap();
    let collect = |it: strata::Iter| -> Entries {
        it.map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()
            .unwrap()
    };
    (
        collect(snapshot.iter()),
        collect(snapshot.keyspace(&ks).iter()),
    )
}

/// Writers that run until dropped: each writes batches across both
/// keyspaces (a put in each, and now and then a delete), so a copy
/// that tore a batch or missed a keyspace's WAL records shows.
struct Writers {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Writers {
    fn start(db: &Db, count: u64) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let threads = (0..count)
            .map(|t| {
                let (db, stop, written) = (db.clone(), Arc::clone(&stop), Arc::clone(&written));
                std::thread::spawn(move || {
                    let ks = db.keyspace(KEYSPACE).unwrap();
                    let mut rng = Rng(t);
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let key = format!("k{:05}", rng.below(3000));
                        let value = format!("t{t}-{i}-{}", "x".repeat(rng.below(200) as usize));
                        let mut batch = db.new_batch();
                        batch.put(&key, &value);
                        batch.put_in(&ks, &key, &value);
                        if rng.one_in(7) {
                            batch.delete(format!("k{:05}", rng.below(3000)));
                        }
                        db.write(batch).unwrap();
                        written.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                })
            })
            .collect();
        Writers {
            stop,
            written,
            threads,
        }
    }

    /// Wait (yielding) until `n` more batches were written.
    fn wait_for(&self, n: u64) {
        let target = self.written.load(Ordering::Relaxed) + n;
        while self.written.load(Ordering::Relaxed) < target {
            std::thread::yield_now();
        }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
    }
}

fn with_snapshot() -> CheckpointOptions {
    CheckpointOptions {
        keep_snapshot: true,
        ..CheckpointOptions::default()
    }
}

/// Open the copy in `dir` with `options` and check it holds exactly what
/// the checkpoint's snapshot of `db` reads.
fn assert_copy_equals_snapshot(db: &Db, info: &CheckpointInfo, dir: &Path, options: Options) {
    let snapshot = info.snapshot.as_ref().unwrap();
    assert_eq!(snapshot.sequence(), info.sequence);
    let expected = snapshot_contents(db, snapshot);
    let copy = Db::open(dir, options).unwrap();
    assert_eq!(
        copy.keyspace_names().len(),
        2,
        "both keyspaces are in the copy"
    );
    let got = contents(&copy);
    assert_eq!(got.0.len(), expected.0.len(), "default keyspace entries");
    assert!(
        got == expected,
        "the copy differs from the snapshot at {}",
        info.sequence
    );
    assert!(!expected.0.is_empty());
    copy.wait_for_compactions().unwrap();
    copy.check_invariants().unwrap();
}

#[test]
fn checkpoints_taken_during_writes_equal_a_snapshot_at_their_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("db"), small_options()).unwrap();
    db.keyspace(KEYSPACE).unwrap();
    let writers = Writers::start(&db, 3);
    let mut infos = Vec::new();
    for round in 0..4 {
        // Enough writes between checkpoints for flushes, WAL rotations and
        // compactions to happen meanwhile.
        writers.wait_for(1500);
        let target = dir.path().join(format!("copy{round}"));
        let info = db.checkpoint_with(&target, &with_snapshot()).unwrap();
        infos.push((info, target));
    }
    writers.stop();
    assert!(infos.windows(2).all(|w| w[0].0.sequence < w[1].0.sequence));
    assert!(
        infos.iter().any(|(i, _)| i.tables_linked > 0),
        "tables are hard-linked on one filesystem"
    );
    for (info, target) in &infos {
        assert_copy_equals_snapshot(&db, info, target, small_options());
    }
    // The copy is a database of its own: writing it changes nothing here.
    let (info, target) = &infos[0];
    let before = snapshot_contents(&db, info.snapshot.as_ref().unwrap());
    let copy = Db::open(target, small_options()).unwrap();
    copy.put(b"only-in-copy", b"1").unwrap();
    copy.compact_range::<&[u8], _>(..).unwrap();
    drop(copy);
    assert_eq!(db.get(b"only-in-copy").unwrap(), None);
    assert!(snapshot_contents(&db, info.snapshot.as_ref().unwrap()) == before);
}

#[test]
fn a_checkpoint_on_the_in_memory_filesystem_links_and_reopens() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.keyspace(KEYSPACE).unwrap();
    let writers = Writers::start(&db, 2);
    writers.wait_for(3000);
    let info = db.checkpoint_with("/copy", &with_snapshot()).unwrap();
    writers.stop();
    assert!(info.tables_linked > 0);
    assert!(
        !fs.exists(Path::new("/copy.tmp")),
        "the staging directory was renamed"
    );
    assert_copy_equals_snapshot(&db, &info, Path::new("/copy"), mem_options(&fs));
}

#[test]
fn writes_without_a_wal_are_in_the_checkpoint() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.keyspace(KEYSPACE).unwrap();
    db.put(b"logged", b"1").unwrap();
    let unlogged = WriteOptions {
        disable_wal: true,
        ..WriteOptions::default()
    };
    db.put_opt(b"unlogged", b"2", &unlogged).unwrap();
    let info = db.checkpoint_with("/copy", &with_snapshot()).unwrap();
    assert_copy_equals_snapshot(&db, &info, Path::new("/copy"), mem_options(&fs));
    let copy = Db::open("/copy", mem_options(&fs)).unwrap();
    assert_eq!(copy.get(b"unlogged").unwrap().as_deref(), Some(&b"2"[..]));
}

#[test]
fn flushing_first_still_gives_the_snapshot() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.keyspace(KEYSPACE).unwrap();
    let writers = Writers::start(&db, 2);
    writers.wait_for(1000);
    let options = CheckpointOptions {
        log_size_for_flush: 0,
        keep_snapshot: true,
    };
    let info = db.checkpoint_with("/copy", &options).unwrap();
    writers.stop();
    assert_copy_equals_snapshot(&db, &info, Path::new("/copy"), mem_options(&fs));
}

#[test]
fn an_existing_or_half_written_target_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("db"), small_options()).unwrap();
    db.put(b"k", b"v").unwrap();

    let existing = dir.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("notes"), b"mine").unwrap();
    match db.checkpoint(&existing) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("exists"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(existing.join("notes")).unwrap(), b"mine");

    // An empty directory is a target that exists too (RocksDB refuses it).
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(matches!(
        db.checkpoint(&empty),
        Err(Error::InvalidArgument(_))
    ));

    // What an interrupted checkpoint leaves: its staging directory.
    let target = dir.path().join("copy");
    let staging = dir.path().join("copy.tmp");
    std::fs::create_dir(&staging).unwrap();
    std::fs::write(staging.join("000007.sst"), b"half").unwrap();
    match db.checkpoint(&target) {
        Err(Error::InvalidArgument(m)) => {
            assert!(m.contains("copy.tmp") && m.contains("partial"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!target.exists());
    // And the half-written directory does not open as a database.
    match Db::open(&staging, Options::default()) {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, staging.join("CURRENT")),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&staging).unwrap();
    db.checkpoint(&target).unwrap();
    let copy = Db::open(&target, Options::default()).unwrap();
    assert_eq!(copy.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

/// A stream checkpoint of `db` taken while writers run.
fn stream_during_writes(db: &Db) -> (Vec<u8>, CheckpointInfo) {
    let writers = Writers::start(db, 2);
    writers.wait_for(2000);
    let mut stream = Vec::new();
    let info = db
        .checkpoint_to_writer_with(&mut stream, &with_snapshot())
        .unwrap();
    writers.stop();
    assert_eq!(info.stream_bytes, stream.len() as u64);
    (stream, info)
}

#[test]
fn a_streamed_checkpoint_installs_and_equals_the_snapshot() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.keyspace(KEYSPACE).unwrap();
    let (stream, info) = stream_during_writes(&db);
    let installed = install_checkpoint_with(&fs, &stream[..], "/replica").unwrap();
    assert_eq!(installed.sequence, info.sequence);
    assert_eq!(installed.files, info.files);
    assert_copy_equals_snapshot(&db, &info, Path::new("/replica"), mem_options(&fs));

    // Into a directory that holds something: refused.
    match install_checkpoint_with(&fs, &stream[..], "/replica") {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("not empty"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_damaged_or_cut_stream_installs_nothing_and_names_the_damage() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.keyspace(KEYSPACE).unwrap();
    let (stream, _) = stream_during_writes(&db);

    // A flipped byte inside the first file's data: the header is the
    // 24 bytes, then tag, name length, name, length, header CRC.
    let name_len = u16::from_le_bytes([stream[25], stream[26]]) as usize;
    let name = std::str::from_utf8(&stream[27..27 + name_len])
        .unwrap()
        .to_owned();
    let data_at = 27 + name_len + 8 + 4;
    let mut damaged = stream.clone();
    damaged[data_at + 10] ^= 0x40;
    match install_checkpoint_with(&fs, &damaged[..], "/bad") {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, Path::new("/bad").join(&name)),
        other => panic!("{other:?}"),
    }
    assert_eq!(fs.list(Path::new("/bad")).unwrap(), Vec::<String>::new());

    // Cut anywhere: an error, and nothing left that opens.
    for cut in [3, 30, stream.len() / 2, stream.len() - 1] {
        let dir = format!("/cut{cut}");
        match install_checkpoint_with(&fs, &stream[..cut], &dir) {
            Err(Error::Corruption { reason, .. }) => {
                assert!(reason.contains("ends early"), "{reason}")
            }
            other => panic!("cut at {cut}: {other:?}"),
        }
        assert_eq!(fs.list(Path::new(&dir)).unwrap(), Vec::<String>::new());
    }

    // Not a stream at all.
    assert!(matches!(
        install_checkpoint_with(&fs, &b"definitely not a checkpoint stream"[..], "/junk"),
        Err(Error::Corruption { .. })
    ));
}

#[test]
fn a_stream_naming_a_path_outside_the_directory_is_refused() {
    // A hand-made stream whose one file is named "../evil.sst".
    let mut s = Vec::new();
    s.extend_from_slice(b"STRATACP");
    s.extend_from_slice(&1u32.to_le_bytes());
    s.extend_from_slice(&5u64.to_le_bytes());
    let crc = crc32(&s);
    s.extend_from_slice(&crc.to_le_bytes());
    let name = b"../evil.sst";
    let mut head = vec![1u8];
    head.extend_from_slice(&(name.len() as u16).to_le_bytes());
    head.extend_from_slice(name);
    head.extend_from_slice(&0u64.to_le_bytes());
    let crc = crc32(&head);
    s.extend_from_slice(&head);
    s.extend_from_slice(&crc.to_le_bytes());
    let fs = MemFileSystem::new();
    match install_checkpoint_with(&fs, &s[..], "/d/inner") {
        Err(Error::Corruption { reason, .. }) => assert!(reason.contains("file name"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(!fs.exists(Path::new("/d/evil.sst")));
}

/// CRC-32 (IEEE), bit by bit: the stream's checksum, computed here
/// without the engine's code.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_finished_checkpoint_survives_a_power_loss() {
    for mode in [
        strata::fs::UnsyncedData::Drop,
        strata::fs::UnsyncedData::KeepRandomPrefix(3),
        strata::fs::UnsyncedData::KeepRandomPages(4),
    ] {
        let fs = MemFileSystem::new();
        let db = open_mem(&fs);
        db.keyspace(KEYSPACE).unwrap();
        let writers = Writers::start(&db, 2);
        writers.wait_for(2000);
        let info = db.checkpoint_with("/copy", &with_snapshot()).unwrap();
        writers.stop();
        let expected = snapshot_contents(&db, info.snapshot.as_ref().unwrap());
        drop(info);
        // Everything the checkpoint wrote was synced before it returned:
        // the machine losing power right after keeps all of it.
        power_cycle(&fs, db, mode);
        let copy = Db::open("/copy", mem_options(&fs)).unwrap();
        assert!(contents(&copy) == expected, "{mode:?}");
    }
}

#[test]
fn a_failed_checkpoint_removes_its_staging_directory_and_can_be_retried() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    db.keyspace(KEYSPACE).unwrap();
    for i in 0..3000u32 {
        db.put(format!("k{i:05}"), format!("v{i}")).unwrap();
    }
    // The MANIFEST is written into the staging directory after the
    // tables are linked and the WALs copied: fail its creation.
    fs.add_fault(strata::fs::FaultPlan {
        op: Some(strata::fs::FsOp::Create),
        path_contains: Some("/copy.tmp/MANIFEST".into()),
        skip: 0,
        count: 1,
    });
    match db.checkpoint("/copy") {
        Err(Error::Io { path, .. }) => assert!(path.starts_with("/copy.tmp"), "{path:?}"),
        other => panic!("{other:?}"),
    }
    assert!(
        !fs.exists(Path::new("/copy.tmp")),
        "the staging directory is gone"
    );
    assert!(!fs.exists(Path::new("/copy")));
    let info = db.checkpoint_with("/copy", &with_snapshot()).unwrap();
    assert_copy_equals_snapshot(&db, &info, Path::new("/copy"), mem_options(&fs));
}

/// A checkpoint holds nothing its source can still lose: the writes it
/// copies are synced in the source first. Before, the capture wrote the
/// WAL buffer out without a sync, so a power loss right after could take
/// from the source writes the copy kept; a replica started from the copy
/// and fed by the change feed would then keep a write its primary lost
/// and miss the one that reused its sequence number.
#[test]
fn a_checkpoint_holds_no_write_its_source_can_lose() {
    let fs = MemFileSystem::new();
    let db = open_mem(&fs);
    for i in 0..100u32 {
        db.put(format!("k{i:03}"), "v").unwrap(); // not synced
    }
    let info = db.checkpoint_with("/copy", &with_snapshot()).unwrap();
    let copied = snapshot_contents(&db, info.snapshot.as_ref().unwrap());
    drop(info);
    power_cycle(&fs, db, strata::fs::UnsyncedData::Drop);
    let source = open_mem(&fs);
    assert!(
        contents(&source) == copied,
        "the source lost writes its checkpoint holds"
    );
}

/// Found in review: a resume's clean-up deleted every table and blob file
/// the current versions do not name, also those a checkpoint had
/// captured and not yet linked (a compaction replaced them meanwhile), so
/// the checkpoint failed. Here the resume runs between the capture and
/// the linking, after a compaction replaced every captured file.
#[test]
fn a_resume_during_a_checkpoint_leaves_the_files_it_captured() {
    use std::sync::Mutex;
    use strata::HookPoint;
    let fs = MemFileSystem::new();
    // The database, for the hook to act on once it is open.
    let handle: Arc<Mutex<Option<Db>>> = Arc::default();
    let hook = {
        let (handle, fs) = (Arc::clone(&handle), fs.clone());
        Arc::new(move |point: HookPoint| {
            if point != HookPoint::CheckpointCaptured {
                return Ok(());
            }
            let Some(db) = handle.lock().unwrap().take() else {
                return Ok(());
            };
            for i in 0..50u32 {
                db.delete(format!("k{i:03}")).unwrap();
            }
            db.compact_range::<&[u8], _>(..).unwrap();
            fail_wal_sync_and_resume(&fs, &db);
            Ok(())
        })
    };
    let options = Options {
        enable_blob_files: true,
        min_blob_size: 100,
        test_hook: Some(hook),
        ..mem_options(&fs)
    };
    let db = Db::open("/db", options).unwrap();
    let mut expected = Vec::new();
    for i in 0..50u32 {
        let (k, v) = (format!("k{i:03}"), format!("{i:0>300}"));
        db.put(&k, &v).unwrap();
        expected.push((k.into_bytes(), v.into_bytes()));
    }
    db.flush().unwrap();
    *handle.lock().unwrap() = Some(db.clone());
    db.checkpoint("/copy").unwrap();
    assert!(handle.lock().unwrap().is_none(), "the hook ran");
    assert_eq!(db.get("k000").unwrap(), None, "deleted in the source");
    let copy = Db::open("/copy", mem_options(&fs)).unwrap();
    let got: Entries = copy
        .iter()
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(got == expected, "{} entries in the copy", got.len());
}
