//! Tables with range tombstones: the `strata.range_del` block, format
//! version 3 (version 5 when aligned) and its checks at open, the tables'
//! bounds, and tables that hold tombstones only.

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use strata_sstable::block::Block;
use strata_sstable::*;

fn small(block_align: bool, compression: Compression) -> TableOptions {
    TableOptions {
        block_size: 256,
        restart_interval: 4,
        block_align,
        compression,
        ..TableOptions::default()
    }
}

/// The three layouts of a data region: aligned (version 5, which may
/// hold range deletions as 3 does), back to back, and compressed (back to
/// back).
fn layouts() -> [(&'static str, TableOptions, u64); 3] {
    [
        ("aligned", small(true, Compression::None), 256),
        ("unaligned", small(false, Compression::None), 0),
        ("zstd", small(true, Compression::Zstd { level: 1 }), 0),
    ]
}

/// A stack as owned parts: start, end, seqnos.
type OwnedStack = (Vec<u8>, Option<Vec<u8>>, Vec<SeqNo>);

/// Every stack, in order.
fn stacks(f: &FragmentedRangeTombstones) -> Vec<OwnedStack> {
    f.iter()
        .map(|s| {
            (
                s.start().to_vec(),
                s.end().map(<[u8]>::to_vec),
                s.seqnos().to_vec(),
            )
        })
        .collect()
}

/// Brute force over the tombstones as written.
fn model_covering(tombstones: &[RangeTombstone], key: &[u8], read_seq: SeqNo) -> Option<SeqNo> {
    tombstones
        .iter()
        .filter(|t| {
            t.start[..] <= *key
                && t.end.as_ref().is_none_or(|e| *key < e[..])
                && t.seqno <= read_seq
        })
        .map(|t| t.seqno)
        .max()
}

/// The version of a table with range tombstones: 3, or 5 when aligned.
fn version_with_tombstones(alignment: u64) -> u32 {
    if alignment > 0 {
        FORMAT_VERSION_ALIGN_FITTING
    } else {
        FORMAT_VERSION_RANGE_DELS
    }
}

#[test]
fn a_table_with_range_tombstones_is_version_3_or_5_in_every_layout() {
    let entries = seed_entries();
    let tombstones = seed_range_tombstones();
    let want = FragmentedRangeTombstones::fragment(tombstones.clone());
    for (name, options, alignment) in layouts() {
        let (bytes, props, bounds) = build_with_tombstones(&entries, &tombstones, options);
        let version = version_with_tombstones(alignment);
        assert_eq!(props.format_version, version, "{name}");
        assert_eq!(props.data_block_alignment, alignment, "{name}");
        assert_eq!(props.num_range_deletions, want.len() as u64, "{name}");
        assert_eq!(props.num_range_deletions, 8, "{name}");
        // Points only in the key bounds and counts; tombstones too in the
        // seqno range (points are 49..=50, tombstones 45..=52).
        assert_eq!(props.num_entries, entries.len() as u64, "{name}");
        assert_eq!(
            (&props.smallest_user_key[..], &props.largest_user_key[..]),
            (&b"k00"[..], &b"k22"[..]),
            "{name}"
        );
        assert_eq!((props.min_seqno, props.max_seqno), (45, 52), "{name}");
        assert_eq!(
            bounds,
            TableBounds {
                smallest: b"k00".to_vec(),
                largest: Vec::new(),
                largest_bound: LargestBound::Unbounded,
            },
            "{name}"
        );
        for path in READ_PATHS {
            let what = format!("{name} read {path:?}");
            let table = open_via(path, bytes.clone(), TableReadOptions::default())
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(table.footer().version, version, "{what}");
            assert_eq!(table.properties(), &props, "{what}");
            assert_eq!(table.bounds(), bounds, "{what}");
            table.verify().unwrap_or_else(|e| panic!("{what}: {e}"));
            let names: Vec<&[u8]> = table
                .meta_index_entries()
                .iter()
                .map(|(n, _)| &n[..])
                .collect();
            assert_eq!(
                names,
                [
                    META_FILTER.as_bytes(),
                    META_PROPERTIES.as_bytes(),
                    META_RANGE_DEL.as_bytes()
                ],
                "{what}"
            );
            let got = table.range_tombstones().expect("tombstones");
            assert_eq!(**got, want, "{what}");
            let k = |s: &str| s.as_bytes().to_vec();
            assert_eq!(
                stacks(got),
                vec![
                    (k("k04"), Some(k("k08")), vec![51]),
                    (k("k08"), Some(k("k10")), vec![51, 45]),
                    (k("k10"), Some(k("k13")), vec![45]),
                    (k("k13"), Some(k("k14")), vec![49, 45]),
                    (k("k14"), Some(k("k16")), vec![45]),
                    (k("k20"), None, vec![52]),
                ],
                "{what}"
            );
            // The point entries are untouched: the table does not apply
            // its own tombstones, the reader above it does.
            assert_eq!(scan_forward(&table), entries, "{what}");
            for key in [
                "", "k03", "k04", "k08", "k09", "k10", "k13", "k15", "k16", "k19", "k20", "zzz",
            ] {
                for read_seq in [0, 44, 45, 49, 51, 52, MAX_SEQNO] {
                    assert_eq!(
                        table.max_covering_tombstone(key.as_bytes(), read_seq),
                        model_covering(&tombstones, key.as_bytes(), read_seq),
                        "{what}: {key} at {read_seq}"
                    );
                }
            }
        }
    }
}

#[test]
fn tables_without_tombstones_keep_version_1_or_5_and_no_range_del_block() {
    let entries = seed_entries();
    for (name, options, alignment) in layouts() {
        let (bytes, props, bounds) = build_with_tombstones(&entries, &[], options);
        let version = if alignment > 0 { 5 } else { 1 };
        assert_eq!(props.format_version, version, "{name}");
        assert_eq!(props.num_range_deletions, 0, "{name}");
        let table = open(bytes);
        assert!(table.range_tombstones().is_none(), "{name}");
        assert_eq!(table.max_covering_tombstone(b"k04", MAX_SEQNO), None);
        assert!(
            !table
                .meta_index_entries()
                .iter()
                .any(|(n, _)| n == META_RANGE_DEL.as_bytes()),
            "{name}"
        );
        assert_eq!(
            bounds,
            TableBounds {
                smallest: b"k00".to_vec(),
                largest: b"k22".to_vec(),
                largest_bound: LargestBound::Included,
            }
        );
        assert_eq!(table.bounds(), bounds);
    }
}

#[test]
fn a_table_of_tombstones_only_builds_opens_iterates_and_has_bounds() {
    let tombstones = seed_lone_tombstones();
    for (name, options, alignment) in layouts() {
        let (bytes, props, bounds) = build_with_tombstones(&[], &tombstones, options);
        assert_eq!((props.num_entries, props.num_data_blocks), (0, 0), "{name}");
        assert_eq!(
            (props.data_bytes, props.data_block_alignment),
            (0, alignment)
        );
        assert_eq!(props.num_range_deletions, 5, "{name}");
        assert!(props.smallest_user_key.is_empty() && props.largest_user_key.is_empty());
        assert_eq!((props.min_seqno, props.max_seqno), (3, 9), "{name}");
        assert_eq!(
            bounds,
            TableBounds {
                smallest: b"az".to_vec(),
                largest: b"f".to_vec(),
                largest_bound: LargestBound::Excluded,
            },
            "{name}"
        );
        for path in READ_PATHS {
            let what = format!("{name} read {path:?}");
            let table = open_via(path, bytes.clone(), TableReadOptions::default())
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            table.verify().unwrap();
            assert!(table.index_entries().unwrap().is_empty(), "{what}");
            assert_eq!(table.bounds(), bounds, "{what}");
            let mut it = table.iter();
            it.seek_to_first().unwrap();
            assert!(!it.valid(), "{what}");
            it.seek_to_last().unwrap();
            assert!(!it.valid(), "{what}");
            let mut target = Vec::new();
            encode_seek_key(&mut target, b"c", MAX_SEQNO);
            it.seek(&target).unwrap();
            assert!(!it.valid(), "{what}");
            it.seek_for_prev(&target).unwrap();
            assert!(!it.valid(), "{what}");
            assert!(table.get(b"c", MAX_SEQNO).unwrap().is_none(), "{what}");
            assert_eq!(table.max_covering_tombstone(b"c", MAX_SEQNO), Some(9));
            assert_eq!(table.max_covering_tombstone(b"c", 8), Some(7));
            assert_eq!(table.max_covering_tombstone(b"b", 6), None);
            assert_eq!(table.max_covering_tombstone(b"az", 3), Some(3));
            assert_eq!(table.max_covering_tombstone(b"f", MAX_SEQNO), None);
        }
    }
}

#[test]
fn tombstones_may_come_in_any_order_or_already_fragmented() {
    let tombstones = seed_range_tombstones();
    let fragmented = FragmentedRangeTombstones::fragment(tombstones.clone());
    let mut reversed = tombstones.clone();
    reversed.reverse();
    let (a, _, bounds_a) =
        build_with_tombstones(&seed_entries(), &tombstones, small(true, Compression::None));
    let (b, _, bounds_b) =
        build_with_tombstones(&seed_entries(), &reversed, small(true, Compression::None));
    let mut builder = TableBuilder::new(Vec::new(), small(true, Compression::None)).unwrap();
    for e in seed_entries() {
        builder.add(&e.user_key, e.seqno, e.kind, &e.value).unwrap();
    }
    builder.add_fragments(&fragmented).unwrap();
    assert_eq!(builder.num_range_tombstones(), fragmented.len());
    let c = builder.finish().unwrap();
    assert_eq!(bounds_a, bounds_b);
    assert_eq!(c.bounds, bounds_a);
    for bytes in [a, b, Bytes::from(c.writer)] {
        assert_eq!(**open(bytes).range_tombstones().unwrap(), fragmented);
    }
}

#[test]
fn the_builder_refuses_bad_tombstones_and_range_deletions_as_points() {
    let mut b = TableBuilder::new(Vec::new(), TableOptions::default()).unwrap();
    let err = b.add(b"k", 5, ValueKind::RangeDelete, b"").unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    for (start, end, seqno) in [
        (&b"b"[..], Some(&b"b"[..]), 1),
        (b"b", Some(b"a"), 1),
        (b"a", Some(b"b"), MAX_SEQNO + 1),
        (b"a", Some(b""), 1),
    ] {
        let err = b.add_range_tombstone(start, end, seqno).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
    assert_eq!(b.num_range_tombstones(), 0);
    // The builder is still usable, and the table empty.
    let built = b.finish().unwrap();
    assert_eq!(
        built.properties.format_version,
        FORMAT_VERSION_ALIGN_FITTING
    );
    assert_eq!(built.properties.num_range_deletions, 0);
}

#[test]
fn bounds_end_at_the_last_point_unless_a_tombstone_reaches_past_it() {
    let entries = seed_entries(); // k00 ..= k22
    /// Tombstones, and the bounds they give: smallest, largest, bound.
    type Case = (
        Vec<RangeTombstone>,
        &'static [u8],
        &'static [u8],
        LargestBound,
    );
    let cases: [Case; 4] = [
        (
            vec![tombstone("k01", Some("k22"), 60)],
            b"k00",
            b"k22",
            LargestBound::Included,
        ),
        (
            vec![tombstone("k01", Some("k22\0"), 60)],
            b"k00",
            b"k22\0",
            LargestBound::Excluded,
        ),
        (
            vec![tombstone("a", Some("b"), 60)],
            b"a",
            b"k22",
            LargestBound::Included,
        ),
        (
            vec![tombstone("a", None, 60)],
            b"a",
            b"",
            LargestBound::Unbounded,
        ),
    ];
    for (tombstones, smallest, largest, largest_bound) in cases {
        let (bytes, _, bounds) =
            build_with_tombstones(&entries, &tombstones, TableOptions::default());
        let want = TableBounds {
            smallest: smallest.to_vec(),
            largest: largest.to_vec(),
            largest_bound,
        };
        assert_eq!(bounds, want, "{tombstones:?}");
        assert_eq!(open(bytes).bounds(), want, "{tombstones:?}");
    }
}

/// Recomputes the checksum of the block at `handle` in `file`, so a test
/// can damage its contents alone.
fn rechecksum(file: &mut [u8], handle: BlockHandle) {
    let (start, end) = (
        handle.offset as usize,
        (handle.offset + handle.size) as usize,
    );
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&file[start..end]);
    hasher.update(&[file[end]]);
    file[end + 1..end + 5].copy_from_slice(&mask_crc(hasher.finalize()).to_le_bytes());
}

fn handle_of(table: &Table, name: &str) -> BlockHandle {
    table
        .meta_index_entries()
        .iter()
        .find(|(n, _)| n == name.as_bytes())
        .map(|(_, h)| *h)
        .unwrap()
}

#[test]
fn a_broken_range_del_block_is_corruption_at_the_entry_in_the_file() {
    let tombstones = seed_range_tombstones();
    let (bytes, _, _) =
        build_with_tombstones(&seed_entries(), &tombstones, small(true, Compression::None));
    let table = open(bytes.clone());
    let h = handle_of(&table, META_RANGE_DEL);
    let block = Block::new(table.read_block(h).unwrap()).unwrap();
    // Entries in order: k04@51, k08@51, k08@45, k10@45, ... (restart
    // interval 1: entry i starts at restart point i, with a 3-byte header
    // and no shared prefix).
    let entry = |i: usize| h.offset + u64::from(block.restart_point(i).unwrap());
    let key_at = |i: usize| (entry(i) + 3) as usize;

    // Entry 2 (k08@45) claims kind 1.
    let mut file = bytes.to_vec();
    let kind_pos = key_at(2) + 3;
    assert_eq!(file[kind_pos], 3);
    file[kind_pos] = 1;
    rechecksum(&mut file, h);
    let err = Table::open(Bytes::from(file), TableReadOptions::default()).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { offset, reason } if *offset == entry(2) && reason.contains("kind 1")),
        "{err}"
    );

    // Entry 2 (k08@45) ends at k11, not k10 as its stack's first entry.
    let mut file = bytes.to_vec();
    let end_pos = key_at(2) + 3 + 8 + 2;
    assert_eq!(&file[end_pos - 2..end_pos + 1], b"k10");
    file[end_pos] = b'1';
    rechecksum(&mut file, h);
    let err = Table::open(Bytes::from(file), TableReadOptions::default()).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { offset, reason } if *offset == entry(2) && reason.contains("different ends")),
        "{err}"
    );

    // Entry 0 ([k04, k08)@51) reaches k09: it overlaps entry 1's stack.
    let mut file = bytes.to_vec();
    let end_pos = key_at(0) + 3 + 8 + 2;
    assert_eq!(&file[end_pos - 2..end_pos + 1], b"k08");
    file[end_pos] = b'9';
    rechecksum(&mut file, h);
    let err = Table::open(Bytes::from(file), TableReadOptions::default()).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { offset, reason } if *offset == entry(1) && reason.contains("overlaps")),
        "{err}"
    );

    // A damaged byte without a new checksum: the block's offset.
    let mut file = bytes.to_vec();
    file[key_at(1)] ^= 1;
    let err = Table::open(Bytes::from(file), TableReadOptions::default()).unwrap_err();
    assert!(
        matches!(err, Error::Corruption { offset, .. } if offset == h.offset),
        "{err}"
    );
}

#[test]
fn a_version_1_or_2_table_listing_a_range_del_block_is_corruption() {
    for (name, options, wrong_version) in [
        ("aligned", small(true, Compression::None), 2),
        ("unaligned", small(false, Compression::None), 1),
    ] {
        let (bytes, _, _) =
            build_with_tombstones(&seed_entries(), &seed_range_tombstones(), options);
        let footer = Footer::decode(&bytes).unwrap();
        let mut file = bytes.to_vec();
        let n = file.len();
        file[n - FOOTER_LEN..].copy_from_slice(&Footer::encode_version(
            footer.meta_index,
            footer.index,
            wrong_version,
        ));
        match Table::open(Bytes::from(file), TableReadOptions::default()) {
            Err(Error::Corruption { offset, reason }) => {
                assert_eq!(offset, footer.meta_index.offset, "{name}: {reason}");
                assert!(reason.contains("strata.range_del"), "{name}: {reason}");
                assert!(
                    reason.contains(&format!("version {wrong_version}")),
                    "{name}: {reason}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn range_tombstones_are_decoded_once_and_kept_out_of_the_cache() {
    let (bytes, _, _) = build_with_tombstones(
        &seed_entries(),
        &seed_range_tombstones(),
        small(true, Compression::None),
    );
    let cache = Arc::new(RecordingCache::default());
    let source = Positional::new(bytes);
    let table = Table::open_source(
        source.clone(),
        TableReadOptions {
            cache: Some(cache.clone()),
            cache_index_and_filter_blocks: true,
            ..TableReadOptions::default()
        },
    )
    .unwrap();
    let reads_after_open = source.reads.load(std::sync::atomic::Ordering::Relaxed);
    for key in [&b"k04"[..], b"k13", b"k30", b"a"] {
        let _ = table.max_covering_tombstone(key, MAX_SEQNO);
    }
    assert_eq!(
        source.reads.load(std::sync::atomic::Ordering::Relaxed),
        reads_after_open,
        "tombstone lookups read nothing"
    );
    let h = handle_of(&table, META_RANGE_DEL);
    let cached = cache.entries.lock().unwrap();
    assert!(
        !cached.keys().any(|k| k.offset == h.offset),
        "the range-del block is not in the cache"
    );
}
