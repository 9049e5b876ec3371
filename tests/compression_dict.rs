//! zstd dictionaries per table through the engine (`compression_opts`,
//! docs/sstable-format.md): values read back after flush, compaction and
//! reopen; tables written without a dictionary stay readable beside
//! them; a damaged dictionary block is `Error::Corruption` naming the
//! table.

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

use strata::{Compression, CompressionOptions, Db, Error, Options};

fn options(max_dict_bytes: u32) -> Options {
    Options {
        compression: Compression::Zstd { level: 3 },
        compression_opts: CompressionOptions {
            max_dict_bytes,
            zstd_max_train_bytes: max_dict_bytes * 16,
        },
        ..Options::default()
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn value(i: usize, round: usize) -> Vec<u8> {
    format!(
        "round {round} value of {i:06}: the quick brown fox {} jumps",
        i % 13
    )
    .repeat(3)
    .into_bytes()
}

fn tables(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .collect();
    v.sort();
    v
}

fn dict_len(path: &std::path::Path) -> Option<usize> {
    let bytes = strata_sstable::bytes::Bytes::from(std::fs::read(path).unwrap());
    strata_sstable::Table::open(bytes, Default::default())
        .unwrap()
        .compression_dict_len()
}

#[test]
fn tables_with_and_without_dictionaries_read_back_through_compaction_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        // A table without a dictionary first, as an older build wrote it.
        let db = Db::open(dir.path(), options(0)).unwrap();
        for i in 0..3000 {
            db.put(key(i), value(i, 0)).unwrap();
        }
        db.flush().unwrap();
    }
    let db = Db::open(dir.path(), options(16 << 10)).unwrap();
    for i in (0..3000).step_by(2) {
        db.put(key(i), value(i, 1)).unwrap();
    }
    db.flush().unwrap();
    let found: Vec<Option<usize>> = tables(dir.path()).iter().map(|p| dict_len(p)).collect();
    assert!(
        found.contains(&None) && found.iter().any(|d| d.is_some()),
        "{found:?}"
    );
    let check = |db: &Db| {
        for i in 0..3000 {
            let want = value(i, if i % 2 == 0 { 1 } else { 0 });
            assert_eq!(db.get(key(i)).unwrap().as_deref(), Some(&want[..]), "{i}");
        }
        assert_eq!(db.iter().count(), 3000);
    };
    check(&db);
    db.compact_range::<&[u8], _>(..).unwrap();
    for path in tables(dir.path()) {
        assert!(
            dict_len(&path).is_some(),
            "{} has no dictionary",
            path.display()
        );
    }
    check(&db);
    drop(db);
    let db = Db::open(dir.path(), options(0)).unwrap();
    check(&db);
}

#[test]
fn a_damaged_dictionary_block_is_corruption_naming_the_table() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), options(16 << 10)).unwrap();
        for i in 0..3000 {
            db.put(key(i), value(i, 0)).unwrap();
        }
        db.flush().unwrap();
    }
    let path = tables(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let table = strata_sstable::Table::open(bytes.clone().into(), Default::default()).unwrap();
    let (_, h) = table
        .meta_index_entries()
        .iter()
        .find(|(n, _)| n == strata_sstable::META_COMPRESSION_DICT.as_bytes())
        .unwrap()
        .clone();
    drop(table);
    bytes[(h.offset + h.size / 2) as usize] ^= 0x08;
    std::fs::write(&path, &bytes).unwrap();
    let err = Db::open(dir.path(), options(16 << 10))
        .and_then(|db| db.get(key(1)).map(|_| ()))
        .unwrap_err();
    match &err {
        Error::Corruption { file, offset, .. } => {
            assert!(file.ends_with(path.file_name().unwrap()), "{err}");
            assert_eq!(*offset, h.offset, "{err}");
        }
        other => panic!("{other}"),
    }
}
