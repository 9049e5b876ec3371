//! zstd dictionaries per table (format version 4, `CompressionOptions`):
//! tables built with one read back through every read path, smaller than
//! without; a damaged dictionary block is corruption at its offset; a
//! dictionary in an older format version is refused.

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::*;
use strata_sstable::*;

/// 3,000 keys with values of a shared vocabulary: what a dictionary
/// learns (keys and words recur across blocks).
fn entries() -> Vec<Entry> {
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
    ];
    let mut rng = Rng(7);
    (0..3000u32)
        .map(|i| {
            let mut value = Vec::new();
            for _ in 0..12 {
                value.extend_from_slice(words[(rng.next() % 7) as usize].as_bytes());
                value.extend_from_slice(format!("{}-", rng.next() % 100).as_bytes());
            }
            Entry {
                user_key: format!("user{:08}", i * 7).into_bytes(),
                seqno: 100,
                kind: ValueKind::Put,
                value,
            }
        })
        .collect()
}

fn zstd(max_dict_bytes: u32, zstd_max_train_bytes: u32) -> TableOptions {
    TableOptions {
        compression: Compression::Zstd { level: 3 },
        compression_opts: CompressionOptions {
            max_dict_bytes,
            zstd_max_train_bytes,
        },
        ..TableOptions::default()
    }
}

fn dict_handle(table: &Table) -> Option<BlockHandle> {
    table
        .meta_index_entries()
        .iter()
        .find(|(n, _)| n == META_COMPRESSION_DICT.as_bytes())
        .map(|(_, h)| *h)
}

#[test]
fn tables_with_a_dictionary_read_back_through_every_path() {
    let entries = entries();
    let (plain, _) = build(&entries, zstd(0, 0));
    for (max_dict, train) in [(16 << 10, 256 << 10), (8 << 10, 0), (16 << 10, 10 << 20)] {
        let (bytes, props) = build(&entries, zstd(max_dict, train));
        let what = format!("max_dict_bytes {max_dict}, zstd_max_train_bytes {train}");
        assert_eq!(props.format_version, FORMAT_VERSION_DICT, "{what}");
        assert!(
            bytes.len() < plain.len(),
            "{what}: {} against {}",
            bytes.len(),
            plain.len()
        );
        for path in READ_PATHS {
            let table = open_via(path, bytes.clone(), TableReadOptions::default()).unwrap();
            let len = table.compression_dict_len().unwrap();
            assert!(
                len > 0 && len <= max_dict as usize,
                "{what}: dictionary of {len}"
            );
            assert_eq!(table.footer().version, FORMAT_VERSION_DICT);
            assert_eq!(scan_forward(&table), entries, "{what}, {path:?}");
            for e in entries.iter().step_by(97) {
                let found = table.get(&e.user_key, 100).unwrap().unwrap();
                assert_eq!(found.value.as_ref(), e.value.as_slice(), "{what}, {path:?}");
            }
            table.verify().unwrap();
            // Data blocks read one by one (sst-dump) decompress too.
            let (_, first) = table.index_entries().unwrap()[0].clone();
            assert!(strata_sstable::block::Block::new(table.read_block(first).unwrap()).is_ok());
        }
    }
    // Without a dictionary asked for, or without zstd, none is written
    // and the format version stays what it was.
    let t = open(plain);
    assert_eq!(t.compression_dict_len(), None);
    assert_eq!(t.footer().version, MIN_FORMAT_VERSION);
    let (bytes, _) = build(
        &entries,
        TableOptions {
            compression_opts: CompressionOptions {
                max_dict_bytes: 16 << 10,
                zstd_max_train_bytes: 0,
            },
            ..TableOptions::default()
        },
    );
    assert_eq!(open(bytes).compression_dict_len(), None);
}

#[test]
fn a_table_too_small_to_train_on_is_written_without_a_dictionary() {
    let entries: Vec<Entry> = entries().into_iter().take(3).collect();
    let (bytes, props) = build(&entries, zstd(16 << 10, 1 << 20));
    assert_ne!(props.format_version, FORMAT_VERSION_DICT);
    let table = open(bytes);
    assert_eq!(table.compression_dict_len(), None);
    assert_eq!(scan_forward(&table), entries);
}

#[test]
fn a_damaged_dictionary_block_is_corruption_at_its_offset() {
    let (bytes, _) = build(&entries(), zstd(16 << 10, 256 << 10));
    let h = dict_handle(&open(bytes.clone())).unwrap();
    for at in [h.offset, h.offset + h.size / 2, h.offset + h.size - 1] {
        let mut damaged = bytes.to_vec();
        damaged[at as usize] ^= 0x20;
        for path in READ_PATHS {
            let err = open_via(
                path,
                Bytes::from(damaged.clone()),
                TableReadOptions::default(),
            )
            .unwrap_err();
            assert!(
                matches!(err, Error::Corruption { offset, .. } if offset == h.offset),
                "{path:?}, byte {at}: {err}"
            );
        }
    }
}

#[test]
fn a_dictionary_in_an_older_format_version_is_refused() {
    let (bytes, _) = build(&entries(), zstd(16 << 10, 0));
    let t = open(bytes.clone());
    let footer = *t.footer();
    let mut old = bytes.to_vec();
    let start = old.len() - FOOTER_LEN;
    old[start..].copy_from_slice(&Footer::encode_version(
        footer.meta_index,
        footer.index,
        FORMAT_VERSION_RANGE_DELS,
    ));
    let err = Table::open(Bytes::from(old), TableReadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Corruption { .. }), "{err}");
    assert!(err.to_string().contains(META_COMPRESSION_DICT), "{err}");
}
