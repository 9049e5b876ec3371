//! Key-value separation (issue 23, docs/design/blob-files.md): the
//! options, and large values stored in blob files.

// Helpers outside `#[test]` functions unwrap too: a failure is the test's.
#![allow(clippy::unwrap_used)]

use strata::{Compression, Db, Error, KeyspaceOptions, Options};

#[test]
fn blob_options_have_rocksdb_defaults_and_bad_values_are_refused() {
    let ks = KeyspaceOptions::default();
    assert!(!ks.enable_blob_files);
    assert_eq!(ks.min_blob_size, 0);
    assert_eq!(ks.blob_file_size, 256 << 20);
    assert_eq!(ks.blob_compression_type, Compression::None);
    assert!(!ks.enable_blob_garbage_collection);
    assert_eq!(ks.blob_garbage_collection_age_cutoff, 0.25);
    assert_eq!(ks.blob_garbage_collection_force_threshold, 1.0);

    let cases: [(Options, &str); 4] = [
        (
            Options {
                blob_garbage_collection_age_cutoff: 1.5,
                ..Options::default()
            },
            "blob_garbage_collection_age_cutoff",
        ),
        (
            Options {
                blob_garbage_collection_force_threshold: -0.1,
                ..Options::default()
            },
            "blob_garbage_collection_force_threshold",
        ),
        (
            Options {
                blob_file_size: 100,
                ..Options::default()
            },
            "blob_file_size",
        ),
        (
            Options {
                blob_compression_type: Compression::Zstd { level: 1000 },
                ..Options::default()
            },
            "blob_compression_type",
        ),
    ];
    for (options, name) in cases {
        match options.validate() {
            Err(Error::InvalidArgument(msg)) => assert!(msg.contains(name), "{msg}"),
            other => panic!("{name}: {other:?}"),
        }
    }

    // A keyspace's own options are validated when it is created.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let err = db
        .keyspace_with(
            "blobs",
            KeyspaceOptions {
                enable_blob_files: true,
                blob_garbage_collection_age_cutoff: f64::NAN,
                ..KeyspaceOptions::default()
            },
        )
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("age_cutoff")),
        "{err:?}"
    );
}

fn blob_options() -> Options {
    Options {
        enable_blob_files: true,
        min_blob_size: 100,
        merge_operator: Some(std::sync::Arc::new(strata::Append::with_separator(","))),
        ..Options::default()
    }
}

fn big(i: usize, round: u8) -> Vec<u8> {
    let mut v = format!("value-{i:05}-round-{round}-").into_bytes();
    v.resize(300 + i % 50, b'a' + round);
    v
}

fn key(i: usize) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn names_with(dir: &std::path::Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(ext))
        .collect();
    v.sort();
    v
}

/// Expected contents: large values by round, small ones inline.
fn check_all(db: &Db, expect: &std::collections::BTreeMap<Vec<u8>, Vec<u8>>) {
    for (k, v) in expect {
        assert_eq!(db.get(k).unwrap().as_deref(), Some(v.as_slice()), "{k:?}");
    }
    let forward: Vec<(Vec<u8>, Vec<u8>)> = db
        .iter()
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> =
        expect.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(forward, want);
    let backward: Vec<(Vec<u8>, Vec<u8>)> = db
        .iter()
        .rev()
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect();
    let mut want_rev = want;
    want_rev.reverse();
    assert_eq!(backward, want_rev);
}

#[test]
fn large_values_go_to_blob_files_and_read_back_through_flush_compaction_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut expect = std::collections::BTreeMap::new();
    {
        let db = Db::open(dir.path(), blob_options()).unwrap();
        for i in 0..200 {
            let v = if i % 4 == 0 {
                b"small".to_vec()
            } else {
                big(i, 0)
            };
            db.put(key(i), &v).unwrap();
            expect.insert(key(i), v);
        }
        db.flush().unwrap();
        assert_eq!(
            names_with(dir.path(), ".blob").len(),
            1,
            "one flush, one blob file"
        );
        check_all(&db, &expect);

        // A snapshot keeps seeing round 0 through overwrites, a flush and
        // a compaction.
        let snap = db.snapshot();
        let before = expect.clone();
        for i in (0..200).step_by(3) {
            let v = big(i, 1);
            db.put(key(i), &v).unwrap();
            expect.insert(key(i), v);
        }
        // A merge onto a value held in a blob file.
        db.merge(key(1), b"+op").unwrap();
        expect.get_mut(&key(1)).unwrap().extend_from_slice(b",+op");
        db.flush().unwrap();
        check_all(&db, &expect);
        db.compact_range::<&[u8], _>(..).unwrap();
        check_all(&db, &expect);
        let opts = strata::ReadOptions {
            snapshot: Some(&snap),
            ..Default::default()
        };
        for (k, v) in &before {
            assert_eq!(db.get_opt(k, &opts).unwrap().as_deref(), Some(v.as_slice()));
        }
        drop(snap);
        db.check_invariants().unwrap();
    }
    let db = Db::open(dir.path(), blob_options()).unwrap();
    check_all(&db, &expect);
    db.verify_checksums().unwrap();
}

#[test]
fn small_values_and_disabled_blobs_write_no_blob_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            min_blob_size: 1000,
            ..blob_options()
        },
    )
    .unwrap();
    db.put(b"k", b"short").unwrap();
    db.flush().unwrap();
    assert!(names_with(dir.path(), ".blob").is_empty());
    drop(db);
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"k", vec![7u8; 5000]).unwrap();
    db.flush().unwrap();
    assert!(names_with(dir.path(), ".blob").is_empty());
}

#[test]
fn a_blob_file_is_deleted_once_no_table_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), blob_options()).unwrap();
    for i in 0..50 {
        db.put(key(i), big(i, 0)).unwrap();
    }
    db.flush().unwrap();
    let first = names_with(dir.path(), ".blob");
    assert_eq!(first.len(), 1);
    // Every key deleted: after a full compaction no table refers to the
    // first blob file.
    for i in 0..50 {
        db.delete(key(i)).unwrap();
    }
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    db.wait_for_compactions().unwrap();
    assert!(
        names_with(dir.path(), ".blob").is_empty(),
        "{:?}",
        names_with(dir.path(), ".blob")
    );
    drop(db);

    // A stray blob file (a flush that crashed before its MANIFEST edit)
    // is removed at open, as a stray table is.
    std::fs::write(dir.path().join("999999.blob"), b"partial").unwrap();
    let db = Db::open(dir.path(), blob_options()).unwrap();
    assert!(names_with(dir.path(), ".blob").is_empty());
    assert_eq!(db.get(key(1)).unwrap(), None);
}

#[test]
fn a_damaged_blob_file_is_corruption_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), blob_options()).unwrap();
        for i in 0..20 {
            db.put(key(i), big(i, 0)).unwrap();
        }
        db.flush().unwrap();
    }
    let blob = names_with(dir.path(), ".blob").pop().unwrap();
    let path = dir.path().join(&blob);
    let mut bytes = std::fs::read(&path).unwrap();
    // A byte in the middle of the records.
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let db = Db::open(dir.path(), blob_options()).unwrap();
    let mut corrupt = 0;
    for i in 0..20 {
        match db.get(key(i)) {
            Ok(Some(v)) => assert_eq!(v.as_ref(), big(i, 0).as_slice()),
            Err(Error::Corruption { file, .. }) => {
                assert!(file.ends_with(&blob), "{file:?}");
                corrupt += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(corrupt, 1, "exactly the damaged record fails");
    let scan: Result<Vec<_>, _> = db.iter().collect();
    assert!(matches!(scan, Err(Error::Corruption { ref file, .. }) if file.ends_with(&blob)));
}

#[test]
fn a_checkpoint_of_a_blob_database_holds_its_blob_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), blob_options()).unwrap();
    let mut expect = std::collections::BTreeMap::new();
    for i in 0..100 {
        db.put(key(i), big(i, 0)).unwrap();
        expect.insert(key(i), big(i, 0));
    }
    db.flush().unwrap();
    let to = dir.path().join("checkpoint");
    db.checkpoint(&to).unwrap();
    assert_eq!(names_with(&to, ".blob"), names_with(dir.path(), ".blob"));
    let copy = Db::open(&to, blob_options()).unwrap();
    check_all(&copy, &expect);

    // Through a checkpoint stream too.
    let mut stream = Vec::new();
    db.checkpoint_to_writer(&mut stream).unwrap();
    let installed = dir.path().join("installed");
    strata::install_checkpoint(&mut stream.as_slice(), &installed).unwrap();
    let copy = Db::open(&installed, blob_options()).unwrap();
    check_all(&copy, &expect);
}

#[test]
fn a_read_only_open_reads_values_in_blob_files() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), blob_options()).unwrap();
        db.put(b"a", big(1, 0)).unwrap();
        db.flush().unwrap();
    }
    let ro = Db::open_read_only(dir.path(), blob_options()).unwrap();
    assert_eq!(ro.get(b"a").unwrap().as_deref(), Some(big(1, 0).as_slice()));
}

#[test]
fn a_backup_of_a_blob_database_restores_with_all_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("db"), blob_options()).unwrap();
    let mut expect = std::collections::BTreeMap::new();
    for i in 0..60 {
        db.put(key(i), big(i, 2)).unwrap();
        expect.insert(key(i), big(i, 2));
    }
    db.flush().unwrap();
    let mut backups = strata::BackupEngine::open(dir.path().join("backups")).unwrap();
    let info = backups.create_backup(&db).unwrap();
    backups.verify(info.id).unwrap();
    let restored = dir.path().join("restored");
    backups.restore(info.id, &restored).unwrap();
    assert_eq!(names_with(&restored, ".blob").len(), 1);
    let copy = Db::open(&restored, blob_options()).unwrap();
    check_all(&copy, &expect);
}

#[test]
fn an_external_table_holding_blob_references_is_refused_at_ingestion() {
    use strata_sstable::{blob::BlobRef, TableBuilder, TableOptions, ValueKind};
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("db"), blob_options()).unwrap();
    let reference = BlobRef {
        file_number: 7,
        offset: 24,
        size: 100,
    };
    let mut b = TableBuilder::new(Vec::new(), TableOptions::default()).unwrap();
    b.add(b"k", 0, ValueKind::BlobIndex, &reference.encode())
        .unwrap();
    let path = dir.path().join("external.sst");
    std::fs::write(&path, b.finish().unwrap().writer).unwrap();
    let e = db
        .ingest(&[&path], &strata::IngestOptions::default())
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("blob reference")),
        "{e}"
    );
    assert_eq!(db.get(b"k").unwrap(), None);
}

/// Found in review: a blob file was opened at its first read, so an
/// iterator holding an old version lost its values when a resume's
/// clean-up deleted the file; it is now opened with the table.
#[test]
fn an_iterator_keeps_reading_its_blob_files_across_a_resume() {
    use strata::fs::{FaultPlan, FsOp, MemFileSystem};
    let fs = MemFileSystem::new();
    let db = Db::open(
        "/db",
        Options {
            fs: std::sync::Arc::new(fs.clone()),
            ..blob_options()
        },
    )
    .unwrap();
    for i in 0..50 {
        db.put(key(i), big(i, 0)).unwrap();
    }
    db.flush().unwrap();
    let it = db.iter(); // holds the version whose table lists the blob file
    for i in 0..50 {
        db.delete(key(i)).unwrap();
    }
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    // A WAL sync failure, then a resume, which removes obsolete files.
    fs.add_fault(FaultPlan {
        path_contains: Some(".log".into()),
        ..FaultPlan::always(FsOp::Sync)
    });
    let sync = strata::WriteOptions {
        sync: true,
        ..Default::default()
    };
    assert!(db.put_opt("x", "y", &sync).is_err());
    fs.clear_faults();
    db.resume().unwrap();
    let (k, v) = it.into_iter().next().unwrap().unwrap();
    assert_eq!((k.to_vec(), v.to_vec()), (key(0), big(0, 0)));
}

/// Found in review: a read-only open beside a writer that compacts away
/// and deletes a blob file kept reading it (opened with the view).
#[test]
fn a_read_only_view_keeps_its_blob_files_while_the_writer_deletes_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), blob_options()).unwrap();
    for i in 0..50 {
        db.put(key(i), big(i, 0)).unwrap();
    }
    db.flush().unwrap();
    let ro = Db::open_read_only(dir.path(), blob_options()).unwrap();
    for i in 0..50 {
        db.delete(key(i)).unwrap();
    }
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    assert!(names_with(dir.path(), ".blob").is_empty());
    assert_eq!(
        ro.get(key(1)).unwrap().as_deref(),
        Some(big(1, 0).as_slice())
    );
}

/// Only a value a read returns is read from a blob file: with every
/// record of the older blob file damaged, reads and scans that step over
/// its versions (overwritten, deleted) still succeed, and a snapshot that
/// returns one of them fails naming it.
#[test]
fn versions_a_read_steps_over_read_no_blob() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), blob_options()).unwrap();
    for i in 0..20 {
        db.put(key(i), big(i, 0)).unwrap();
    }
    db.flush().unwrap();
    let old = db.snapshot();
    let mut expect = std::collections::BTreeMap::new();
    for i in 0..20 {
        if (5..10).contains(&i) {
            db.delete(key(i)).unwrap();
        } else {
            db.put(key(i), big(i, 1)).unwrap();
            expect.insert(key(i), big(i, 1));
        }
    }
    db.flush().unwrap();
    let blobs = names_with(dir.path(), ".blob");
    assert_eq!(blobs.len(), 2, "{blobs:?}");
    // Every record byte of the first flush's blob file (header and
    // footer kept: the file still opens).
    let path = dir.path().join(&blobs[0]);
    let mut bytes = std::fs::read(&path).unwrap();
    let end = bytes.len() - 32;
    for b in &mut bytes[24..end] {
        *b ^= 0x55;
    }
    std::fs::write(&path, &bytes).unwrap();

    check_all(&db, &expect);
    for i in 5..10 {
        assert_eq!(db.get(key(i)).unwrap(), None);
    }
    // A cursor moving both ways over overwritten and deleted keys.
    let mut cursor = db.cursor();
    cursor.seek_to_last().unwrap();
    let mut back = 0;
    while cursor.valid() {
        back += 1;
        cursor.prev().unwrap();
    }
    assert_eq!(back, expect.len());
    // The snapshot returns the damaged versions: each read fails, naming
    // the blob file.
    let err = old.get(key(0)).unwrap_err();
    assert!(
        matches!(err, Error::Corruption { ref file, .. } if file.ends_with(&blobs[0])),
        "{err:?}"
    );
    let scan: Result<Vec<_>, _> = old.iter().collect();
    assert!(matches!(scan, Err(Error::Corruption { ref file, .. }) if file.ends_with(&blobs[0])));
}
