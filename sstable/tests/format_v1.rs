//! Tables in format version 1 (data blocks back to back, before aligned
//! blocks made version 2) read as they always did, through every read
//! path. The fixtures in `fixtures/format-v1/` were not written by this
//! code: they are the fuzz seeds strata's main branch committed in
//! ca5000e (`git show main:fuzz/corpus/sstable_reader/seed-none`), written
//! by the version-1 builder from `seed_entries()`. So a change to how this
//! crate reads version 1 cannot hide behind a matching change to how it
//! writes it.

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use strata_sstable::*;

fn fixture(name: &str) -> Bytes {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/format-v1")
        .join(format!("{name}.sst"));
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// (internal key, value) of every entry, first to last.
fn scan_forward(table: &Arc<Table>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut it = table.iter();
    it.seek_to_first().unwrap();
    let mut out = Vec::new();
    while it.valid() {
        out.push((it.key().to_vec(), it.value().to_vec()));
        it.next().unwrap();
    }
    out
}

/// The same, last to first.
fn scan_backward(table: &Arc<Table>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut it = table.iter();
    it.seek_to_last().unwrap();
    let mut out = Vec::new();
    while it.valid() {
        out.push((it.key().to_vec(), it.value().to_vec()));
        it.prev().unwrap();
    }
    out
}

#[test]
fn version_1_tables_from_before_version_2_read_every_entry_on_every_path() {
    let entries = seed_entries();
    let expected: Vec<(Vec<u8>, Vec<u8>)> = entries
        .iter()
        .map(|e| (e.ikey(), e.value.clone()))
        .collect();
    for (name, compression, bloom_bits) in [
        ("none", "none", 10),
        ("nofilter", "none", 0),
        ("zstd", "zstd:1", 10),
    ] {
        for path in READ_PATHS {
            let what = format!("{name}.sst read {path:?}");
            let table = open_via(path, fixture(name), TableReadOptions::default())
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let p = table.properties();
            assert_eq!(table.footer().version, 1, "{what}");
            assert_eq!((p.format_version, p.data_block_alignment), (1, 0), "{what}");
            assert_eq!(
                (p.compression.as_str(), p.bloom_bits_per_key),
                (compression, bloom_bits),
                "{what}"
            );
            assert!(p.num_data_blocks > 1, "{what}: several blocks");
            table.verify().unwrap_or_else(|e| panic!("{what}: {e}"));

            assert_eq!(scan_forward(&table), expected, "{what}");
            let mut reversed = expected.clone();
            reversed.reverse();
            assert_eq!(scan_backward(&table), reversed, "{what}");

            // Every key at every sequence number, and keys between them.
            for e in &entries {
                for seqno in [48, 49, 50, MAX_SEQNO] {
                    let found = table.get(&e.user_key, seqno).unwrap();
                    let want = model_get(&entries, &e.user_key, seqno);
                    assert_eq!(
                        found.map(|f| (f.seqno, f.kind, f.value.to_vec())),
                        want.map(|w| (w.seqno, w.kind, w.value.clone())),
                        "{what}: {:?} at {seqno}",
                        String::from_utf8_lossy(&e.user_key)
                    );
                }
            }
            for absent in [&b"k01"[..], b"k23", b"a", b"z"] {
                assert!(table.get(absent, MAX_SEQNO).unwrap().is_none(), "{what}");
            }
            // A seek lands on the first entry at or after its target.
            let mut it = table.iter();
            let mut target = Vec::new();
            encode_internal_key(&mut target, b"k05", MAX_SEQNO, ValueKind::Put);
            it.seek(&target).unwrap();
            assert_eq!(it.parsed_key().user_key, b"k06", "{what}");
        }
    }
}

#[test]
fn an_empty_version_1_table_opens_and_holds_nothing() {
    for path in READ_PATHS {
        let table = open_via(path, fixture("empty"), TableReadOptions::default()).unwrap();
        assert_eq!(table.footer().version, 1);
        assert_eq!(table.properties().num_entries, 0);
        table.verify().unwrap();
        assert!(scan_forward(&table).is_empty());
        assert!(table.get(b"k00", MAX_SEQNO).unwrap().is_none());
    }
}

#[test]
fn a_table_built_without_alignment_is_version_1_like_the_fixtures() {
    // What this crate writes when block_align is off (or the table is
    // compressed) is the format the fixtures show, entry for entry.
    let entries = seed_entries();
    for (name, options) in [
        (
            "none",
            TableOptions {
                block_size: 256,
                restart_interval: 4,
                block_align: false,
                ..TableOptions::default()
            },
        ),
        (
            "zstd",
            TableOptions {
                block_size: 256,
                restart_interval: 4,
                compression: Compression::Zstd { level: 1 },
                ..TableOptions::default()
            },
        ),
    ] {
        let (built, props) = build(&entries, options);
        let old = open(fixture(name));
        let new = open(built);
        assert_eq!(new.footer().version, 1, "{name}");
        assert_eq!(props.format_version, 1, "{name}");
        assert_eq!(scan_forward(&new), scan_forward(&old), "{name}");
        let (a, b) = (new.properties(), old.properties());
        assert_eq!(
            (
                a.num_entries,
                a.num_deletions,
                &a.smallest_user_key,
                &a.largest_user_key
            ),
            (
                b.num_entries,
                b.num_deletions,
                &b.smallest_user_key,
                &b.largest_user_key
            ),
            "{name}"
        );
    }
}
