//! Builder contracts, properties through a whole table, the block cache.

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::*;
use strata_sstable::*;

#[test]
fn rejects_out_of_order_and_duplicate_keys_leaving_the_table_unchanged() {
    let mut b = TableBuilder::new(Vec::new(), TableOptions::default()).unwrap();
    b.add(b"b", 5, ValueKind::Put, b"1").unwrap();
    let rejected: [(&[u8], u64, ValueKind); 5] = [
        (b"a", 9, ValueKind::Put),    // smaller user key
        (b"b", 5, ValueKind::Put),    // duplicate
        (b"b", 6, ValueKind::Put),    // newer version after older
        (b"b", 5, ValueKind::Delete), // same seqno, lower kind sorts after: fine below
        (b"", 1, ValueKind::Put),
    ];
    for (i, (k, s, kind)) in rejected.iter().enumerate() {
        let r = b.add(k, *s, *kind, b"x");
        if i == 3 {
            // (b, 5, Delete) has a smaller trailer than (b, 5, Put): it sorts after.
            r.unwrap();
            continue;
        }
        assert!(
            matches!(r, Err(Error::InvalidArgument(_))),
            "case {i}: {r:?}"
        );
    }
    assert!(matches!(
        b.add(b"c", MAX_SEQNO + 1, ValueKind::Put, b""),
        Err(Error::InvalidArgument(_))
    ));
    b.add(b"c", MAX_SEQNO, ValueKind::Put, b"3").unwrap();
    assert_eq!(b.num_entries(), 3);
    let built = b.finish().unwrap();
    let table = open(Bytes::from(built.writer));
    let keys: Vec<(Vec<u8>, u64, ValueKind)> = scan_forward(&table)
        .into_iter()
        .map(|e| (e.user_key, e.seqno, e.kind))
        .collect();
    assert_eq!(
        keys,
        vec![
            (b"b".to_vec(), 5, ValueKind::Put),
            (b"b".to_vec(), 5, ValueKind::Delete),
            (b"c".to_vec(), MAX_SEQNO, ValueKind::Put)
        ]
    );
}

#[test]
fn new_rejects_bad_options() {
    let bad = TableOptions {
        restart_interval: 0,
        ..Default::default()
    };
    assert!(matches!(
        TableBuilder::new(Vec::new(), bad),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn properties_round_trip_through_a_table() {
    let mut entries = Vec::new();
    for i in 0..1000u64 {
        let kind = if i % 10 == 0 {
            ValueKind::Delete
        } else {
            ValueKind::Put
        };
        entries.push(Entry {
            user_key: format!("user{i:05}").into_bytes(),
            seqno: 5000 - i,
            kind,
            value: vec![b'v'; (i % 50) as usize],
        });
    }
    for compression in [Compression::None, Compression::Zstd { level: 3 }] {
        let options = TableOptions {
            compression: compression.clone(),
            ..Default::default()
        };
        let (bytes, props) = build(&entries, options);
        let table = open(bytes.clone());
        assert_eq!(table.properties(), &props);
        let p = &props;
        assert_eq!(p.num_entries, 1000);
        assert_eq!(p.num_deletions, 100);
        assert_eq!(p.raw_key_bytes, 1000 * (9 + 8));
        assert_eq!(
            p.raw_value_bytes,
            entries.iter().map(|e| e.value.len() as u64).sum::<u64>()
        );
        assert_eq!(p.smallest_user_key, b"user00000");
        assert_eq!(p.largest_user_key, b"user00999");
        assert_eq!((p.min_seqno, p.max_seqno), (4001, 5000));
        assert_eq!(p.compression, compression.property_name());
        assert_eq!(
            (p.block_size, p.restart_interval, p.bloom_bits_per_key),
            (4096, 16, 10)
        );
        // Uncompressed tables have aligned data blocks (version 5);
        // compressed ones cannot (version 1, readable by every version).
        let (version, alignment) = match compression {
            Compression::None => (FORMAT_VERSION_ALIGN_FITTING, 4096),
            _ => (MIN_FORMAT_VERSION, 0),
        };
        assert_eq!(
            (p.format_version, p.data_block_alignment),
            (version, alignment)
        );
        assert_eq!(table.footer().version, version);
        assert!(p.creation_time > 1_600_000_000);
        assert_eq!(
            p.num_data_blocks,
            table.index_entries().unwrap().len() as u64
        );
        let footer = table.footer();
        assert_eq!(footer.index.size + BLOCK_TRAILER_LEN as u64, p.index_bytes);
        assert_eq!(
            p.data_bytes + p.filter_bytes + p.index_bytes,
            table
                .meta_index_entries()
                .iter()
                .find(|(n, _)| n == b"strata.properties")
                .unwrap()
                .1
                .offset
        );
        let filter = table.filter().unwrap().unwrap();
        assert_eq!(filter.num_probes(), 6);
        // The filter's lines start on a 64-byte boundary of the file.
        let fh = table
            .meta_index_entries()
            .iter()
            .find(|(n, _)| n == b"strata.filter.bloom")
            .unwrap()
            .1;
        assert_eq!(
            (fh.offset as usize + filter.padding()) % FILTER_LINE_BYTES,
            0
        );
        assert_eq!(&bytes[bytes.len() - 8..], &MAGIC_BYTES);
    }
}

#[test]
fn no_filter_when_bloom_bits_is_zero() {
    let entries = vec![Entry {
        user_key: b"k".to_vec(),
        seqno: 1,
        kind: ValueKind::Put,
        value: b"v".to_vec(),
    }];
    let (bytes, props) = build(
        &entries,
        TableOptions {
            bloom_bits_per_key: 0,
            ..Default::default()
        },
    );
    assert_eq!(props.filter_bytes, 0);
    let table = open(bytes);
    assert!(table.filter().unwrap().is_none());
    assert!(table.may_contain(b"anything"));
    assert_eq!(table.meta_index_entries().len(), 1);
}

#[test]
fn estimated_file_size_tracks_output() {
    let mut b = TableBuilder::new(Vec::new(), TableOptions::default()).unwrap();
    let mut last = 0;
    for i in 0..10_000u32 {
        b.add(
            format!("{i:016}").as_bytes(),
            1,
            ValueKind::Put,
            &[7u8; 100],
        )
        .unwrap();
        let est = b.estimated_file_size();
        assert!(est >= last);
        last = est;
    }
    let built = b.finish().unwrap();
    assert!(
        last <= built.file_size && built.file_size < last + last / 10,
        "{last} vs {}",
        built.file_size
    );
}

#[derive(Default)]
struct MapCache {
    blocks: Mutex<HashMap<(u64, u64), block::Block>>,
    hits: AtomicUsize,
    inserts: AtomicUsize,
}

impl BlockCache for MapCache {
    fn lookup(&self, key: CacheKey) -> Option<CachedBlock> {
        let hit = self
            .blocks
            .lock()
            .unwrap()
            .get(&(key.table_id, key.offset))
            .cloned();
        if hit.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        hit.map(CachedBlock::Data)
    }
    fn insert(&self, key: CacheKey, block: CachedBlock, _priority: CachePriority) {
        let CachedBlock::Data(block) = block else {
            panic!("an in-memory table cached its index or filter");
        };
        self.inserts.fetch_add(1, Ordering::Relaxed);
        self.blocks
            .lock()
            .unwrap()
            .insert((key.table_id, key.offset), block);
    }
    fn insert_pinned(&self, _key: CacheKey, _block: CachedBlock) {
        panic!("an in-memory table pinned its index or filter");
    }
    fn erase(&self, key: CacheKey) {
        self.blocks
            .lock()
            .unwrap()
            .remove(&(key.table_id, key.offset));
    }
}

const COMPRESSIBLE: &[u8] = b"compressible compressible compressible";

/// 2000 keys whose values zstd shrinks.
fn compressible_entries() -> Vec<Entry> {
    (0..2000u32)
        .map(|i| Entry {
            user_key: format!("key{i:06}").into_bytes(),
            seqno: 1,
            kind: ValueKind::Put,
            value: COMPRESSIBLE.to_vec(),
        })
        .collect()
}

#[test]
fn compressed_blocks_go_through_the_cache_uncompressed_ones_do_not() {
    let entries = compressible_entries();
    for (compression, expect_cached) in [
        (Compression::Zstd { level: 1 }, true),
        (Compression::None, false),
    ] {
        let (bytes, _) = build(
            &entries,
            TableOptions {
                compression,
                ..Default::default()
            },
        );
        let cache = Arc::new(MapCache::default());
        let options = TableReadOptions {
            table_id: 7,
            cache: Some(cache.clone()),
            ..Default::default()
        };
        let table = Arc::new(Table::open(bytes.clone(), options).unwrap());
        for _ in 0..2 {
            let found = table.get(b"key000123", 5).unwrap().unwrap();
            assert_eq!(&found.value[..], b"compressible compressible compressible");
        }
        assert_eq!(scan_forward(&table).len(), 2000);
        let (hits, inserts) = (
            cache.hits.load(Ordering::Relaxed),
            cache.inserts.load(Ordering::Relaxed),
        );
        if expect_cached {
            assert!(hits >= 1 && inserts >= 1, "hits {hits} inserts {inserts}");
            assert!(cache.blocks.lock().unwrap().keys().all(|(id, _)| *id == 7));
        } else {
            assert_eq!((hits, inserts), (0, 0));
        }

        // fill_cache = false: reads do not insert.
        let cache = Arc::new(MapCache::default());
        let options = TableReadOptions {
            cache: Some(cache.clone()),
            fill_cache: false,
            ..Default::default()
        };
        let table = Arc::new(Table::open(bytes, options).unwrap());
        assert_eq!(scan_forward(&table).len(), 2000);
        assert_eq!(cache.inserts.load(Ordering::Relaxed), 0);
    }
}

/// Per-read options override the table's: `fill_cache` decides whether
/// a read inserts, `verify_checksums` whether a damaged checksum fails it,
/// and a block whose check fails never enters the cache.
#[test]
fn block_read_options_override_the_tables_per_read() {
    let entries = compressible_entries();
    let value = COMPRESSIBLE;
    let no_fill = BlockReadOptions {
        fill_cache: false,
        ..Default::default()
    };
    let unchecked = BlockReadOptions {
        verify_checksums: false,
        ..Default::default()
    };
    let (bytes, _) = build(
        &entries,
        TableOptions {
            compression: Compression::Zstd { level: 1 },
            ..Default::default()
        },
    );
    let cache = Arc::new(MapCache::default());
    let open = |bytes: Bytes| {
        let options = TableReadOptions {
            cache: Some(cache.clone()),
            ..Default::default()
        };
        Arc::new(Table::open(bytes, options).unwrap())
    };
    let table = open(bytes.clone());
    let found = table.get_with_options(b"key000000", 5, no_fill).unwrap();
    assert_eq!(&found.unwrap().value[..], value);
    let mut it = table.iter_with_options(no_fill);
    it.seek_to_first().unwrap();
    while it.valid() {
        it.next().unwrap();
    }
    assert_eq!(cache.inserts.load(Ordering::Relaxed), 0);
    table.get(b"key000000", 5).unwrap();
    assert_eq!(cache.inserts.load(Ordering::Relaxed), 1);

    // Damage the first data block's checksum (its contents stay intact).
    let first = table.index_entries().unwrap()[0].1;
    let mut damaged = bytes.to_vec();
    damaged[(first.offset + first.size + 1) as usize] ^= 0x01;
    let cache_before = cache.inserts.load(Ordering::Relaxed);
    let table = Arc::new(
        Table::open(
            Bytes::from(damaged),
            TableReadOptions {
                table_id: 9,
                cache: Some(cache.clone()),
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let found = table.get_with_options(b"key000000", 5, unchecked).unwrap();
    assert_eq!(&found.unwrap().value[..], value);
    assert_eq!(
        cache.inserts.load(Ordering::Relaxed),
        cache_before,
        "a block that fails its check entered the cache"
    );
    let err = table.get(b"key000000", 5).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    let found = table.get_with_options(b"key000000", 5, unchecked).unwrap();
    assert_eq!(&found.unwrap().value[..], value);
}

#[test]
fn uncompressed_values_are_zero_copy_slices_of_the_file() {
    let entries = vec![Entry {
        user_key: b"k".to_vec(),
        seqno: 1,
        kind: ValueKind::Put,
        value: b"value".to_vec(),
    }];
    let (bytes, _) = build(&entries, TableOptions::default());
    let range = bytes.as_ptr_range();
    let table = open(bytes);
    let found = table.get(b"k", 1).unwrap().unwrap();
    assert!(range.contains(&found.value.as_ptr()));
    let mut it = table.iter();
    it.seek_to_first().unwrap();
    assert!(range.contains(&it.value_bytes().as_ptr()));
}

#[test]
fn unknown_kinds_are_corruption() {
    // A block written by hand with kind 5 (unknown) read with checksums
    // on: the checksum is valid, the kind is not.
    let mut b = TableBuilder::new(Vec::new(), TableOptions::default()).unwrap();
    b.add(b"k", 1, ValueKind::Put, b"v").unwrap();
    let mut bytes = b.finish().unwrap().writer;
    let h = open(Bytes::from(bytes.clone())).index_entries().unwrap()[0].1;
    // The entry is the first in block 0: header (3 bytes), key "k", trailer.
    let kind_pos = 3 + 1;
    assert_eq!(bytes[kind_pos], ValueKind::Put as u8);
    bytes[kind_pos] = 6;
    // Re-checksum block 0 so only the kind is wrong.
    let end = (h.offset + h.size) as usize;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[h.offset as usize..end]);
    hasher.update(&[bytes[end]]);
    bytes[end + 1..end + 5].copy_from_slice(&mask_crc(hasher.finalize()).to_le_bytes());
    let table = open(Bytes::from(bytes));
    let err = table.get(b"k", 1).unwrap_err();
    assert!(matches!(err, Error::Corruption { offset: 0, .. }), "{err}");
    let mut it = table.iter();
    assert!(it.seek_to_first().is_err());
    assert!(!it.valid());
    table.verify().unwrap();
}

/// The fuzzers' hand-made seeds must stay valid for the current format:
/// every seed table opens and verifies, every seed block parses. With
/// `STRATA_WRITE_FUZZ_SEEDS=1` the seeds are regenerated first (do that
/// when the format changes). The minimized corpus beside them
/// (`seed-min-*`, kept by `cargo fuzz cmin`) is mostly damaged input on
/// purpose, so it is not held to this.
#[test]
fn fuzz_seeds_are_valid_for_the_current_format() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let tables = root.join("sstable_reader");
    let blocks = root.join("block_decode");
    if std::env::var_os("STRATA_WRITE_FUZZ_SEEDS").is_some() {
        write_fuzz_seeds(&tables, &blocks);
    }
    let mut checked = 0;
    let hand_made = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| {
                // The hand-made seeds, not the minimised ones nor what a
                // local fuzz run added to the corpus (untracked inputs
                // that need not be valid tables).
                let name = path.file_name().unwrap().to_string_lossy();
                name.starts_with("seed-") && !name.starts_with("seed-min-")
            })
            .collect::<Vec<_>>()
    };
    for path in hand_made(&tables) {
        let bytes = std::fs::read(path).unwrap();
        let table = open(Bytes::from(bytes));
        table.verify().unwrap();
        checked += 1;
    }
    for path in hand_made(&blocks) {
        let bytes = std::fs::read(path).unwrap();
        let block = strata_sstable::block::Block::new(Bytes::from(bytes)).unwrap();
        drop(block);
        checked += 1;
    }
    assert!(checked >= 6, "seed corpus missing: {checked} files");
}

/// The options of the fuzzers' seed tables: several small blocks.
fn small_options() -> TableOptions {
    TableOptions {
        block_size: 256,
        restart_interval: 4,
        ..Default::default()
    }
}

/// Writes the fuzzers' seed corpus: small valid tables and blocks.
fn write_fuzz_seeds(tables: &std::path::Path, blocks: &std::path::Path) {
    std::fs::create_dir_all(tables).unwrap();
    std::fs::create_dir_all(blocks).unwrap();
    let entries = seed_entries();
    let small = small_options();
    let seeds = [
        ("seed-none", small.clone()),
        (
            "seed-zstd",
            TableOptions {
                compression: Compression::Zstd { level: 1 },
                ..small.clone()
            },
        ),
        (
            // Format version 4: data blocks against a (raw-content)
            // dictionary.
            "seed-zstd-dict",
            TableOptions {
                compression: Compression::Zstd { level: 1 },
                compression_opts: CompressionOptions {
                    max_dict_bytes: 256,
                    zstd_max_train_bytes: 0,
                },
                ..small.clone()
            },
        ),
        (
            "seed-nofilter",
            TableOptions {
                bloom_bits_per_key: 0,
                restart_interval: 1,
                ..small
            },
        ),
    ];
    for (name, options) in seeds {
        let (bytes, _) = build(&entries, options);
        std::fs::write(tables.join(name), &bytes).unwrap();
    }
    std::fs::write(
        tables.join("seed-empty"),
        build(&[], TableOptions::default()).0,
    )
    .unwrap();
    // Format version 3: a range-del block beside points, and alone.
    let (with_points, _, _) =
        build_with_tombstones(&entries, &seed_range_tombstones(), small_options());
    std::fs::write(tables.join("seed-range-del"), &with_points).unwrap();
    let (alone, _, _) = build_with_tombstones(
        &[],
        &seed_lone_tombstones(),
        TableOptions {
            bloom_bits_per_key: 0,
            ..small_options()
        },
    );
    std::fs::write(tables.join("seed-range-del-only"), &alone).unwrap();
    // Format version 5 where padding goes before some blocks and not
    // others: small entries and values of about a unit and several units.
    let mixed: Vec<Entry> = (0..40u32)
        .map(|i| Entry {
            user_key: format!("m{i:03}").into_bytes(),
            seqno: 9,
            kind: ValueKind::Put,
            value: vec![b'a' + (i % 26) as u8; [8, 30, 250, 3, 600, 40, 200][i as usize % 7]],
        })
        .collect();
    std::fs::write(tables.join("seed-mixed"), build(&mixed, small_options()).0).unwrap();
    // Tables older builds wrote, committed as test fixtures: versions 1,
    // 2 and 3 (aligned), which this builder no longer writes as such.
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (fixture, seed) in [
        ("format-v1/none.sst", "seed-v1"),
        ("before-v3/none.sst", "seed-v2"),
        ("format-v3/aligned.sst", "seed-v3-aligned"),
    ] {
        std::fs::copy(fixtures.join(fixture), tables.join(seed)).unwrap();
    }
    for interval in [1usize, 3] {
        let mut b = strata_sstable::block::BlockBuilder::new(interval);
        for e in entries.iter().take(9) {
            b.add(&e.ikey(), &e.value);
        }
        std::fs::write(blocks.join(format!("seed-restart-{interval}")), b.finish()).unwrap();
    }
}

#[test]
fn data_blocks_stay_within_the_block_size_when_entries_are_small() {
    // 116-byte entries: each block is cut once within 10% of 4 KiB, before
    // the entry that would take it past (RocksDB's block_size_deviation),
    // so a cached block fits a 4 KiB allocation.
    let entries: Vec<Entry> = (0..20_000u32)
        .map(|i| Entry {
            user_key: format!("key{i:013}").into_bytes(),
            seqno: 1,
            kind: ValueKind::Put,
            value: vec![b'v'; 100],
        })
        .collect();
    for block_align in [false, true] {
        let options = TableOptions {
            block_align,
            ..TableOptions::default()
        };
        let (bytes, _) = build(&entries, options);
        let table = open(bytes);
        let blocks = table.index_entries().unwrap();
        assert!(blocks.len() > 500);
        if !block_align {
            // Unaligned blocks follow each other: most start off a page.
            assert!(blocks.iter().filter(|(_, h)| h.offset % 4096 != 0).count() > 400);
        }
        // Aligned, a block and its trailer fit one 4 KiB page.
        let most = if block_align { 4096 - 5 } else { 4096 };
        for (_, h) in &blocks[..blocks.len() - 1] {
            assert!(
                (3687..=most).contains(&h.size),
                "a data block of {} bytes",
                h.size
            );
            if block_align {
                assert_eq!(h.offset % 4096, 0, "an aligned block at {}", h.offset);
            }
        }
    }
    // An entry larger than the block still makes a block of its own.
    let big = vec![Entry {
        user_key: b"k".to_vec(),
        seqno: 1,
        kind: ValueKind::Put,
        value: vec![7u8; 10_000],
    }];
    let (bytes, _) = build(&big, TableOptions::default());
    assert_eq!(open(bytes).index_entries().unwrap().len(), 1);
}

#[test]
fn alignment_and_format_version_must_agree() {
    let entries: Vec<Entry> = (0..500u32)
        .map(|i| Entry {
            user_key: format!("key{i:05}").into_bytes(),
            seqno: 1,
            kind: ValueKind::Put,
            value: vec![b'v'; 60],
        })
        .collect();
    let (aligned, props) = build(&entries, TableOptions::default());
    assert_eq!(props.data_block_alignment, 4096);
    // The same table claiming format version 1 (footer rewritten, its
    // checksum fixed): alignment is a version 2 (now 5) feature.
    let footer = Footer::decode(&aligned).unwrap();
    let mut v1 = aligned.to_vec();
    let n = v1.len();
    v1[n - FOOTER_LEN..].copy_from_slice(&Footer::encode_version(
        footer.meta_index,
        footer.index,
        1,
    ));
    match Table::open(Bytes::from(v1), TableReadOptions::default()) {
        Err(Error::Corruption { reason, .. }) => {
            assert!(reason.contains("format version"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A version this crate does not know is refused by name.
    let mut newer = aligned.to_vec();
    newer[n - FOOTER_LEN..].copy_from_slice(&Footer::encode_version(
        footer.meta_index,
        footer.index,
        FORMAT_VERSION + 1,
    ));
    match Table::open(Bytes::from(newer), TableReadOptions::default()) {
        Err(Error::Corruption { reason, .. }) => {
            let want = format!("unsupported format version {}", FORMAT_VERSION + 1);
            assert!(reason.contains(&want), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // An unaligned table is version 1 and reads as before.
    let (plain, props) = build(
        &entries,
        TableOptions {
            block_align: false,
            ..TableOptions::default()
        },
    );
    assert_eq!((props.format_version, props.data_block_alignment), (1, 0));
    assert_eq!(scan_forward(&open(plain)), entries);
}
