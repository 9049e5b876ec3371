//! Tables built from arbitrary sorted entries, with random options, read
//! back through every access path (in memory; positional reads without a
//! cache, with one, with the index and filter in it) and checked against a
//! sorted model.

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use proptest::prelude::*;
use strata_sstable::*;

fn user_key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Small alphabet: long shared prefixes, many near-collisions.
        4 => prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c', 0u8, 0xff]), 0..12),
        2 => prop::collection::vec(any::<u8>(), 0..24),
        1 => prop::collection::vec(any::<u8>(), 200..600),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(prop::sample::select(vec![b'x', b'y', b'z']), 0..40),
        1 => prop::collection::vec(any::<u8>(), 0..8),
        1 => prop::collection::vec(any::<u8>(), 500..3000),
        // Around an aligned unit of 4 KiB: blocks that just fit one and
        // blocks just over it, mixed with the small ones.
        1 => (4000usize..4200).prop_map(|n| vec![b'q'; n]),
    ]
}

fn versions() -> impl Strategy<Value = BTreeMap<u64, (bool, Vec<u8>)>> {
    prop::collection::btree_map(0u64..60, (prop::bool::weighted(0.2), value()), 1..5)
}

fn options() -> impl Strategy<Value = TableOptions> {
    (
        prop_oneof![
            Just(Compression::None),
            (1i32..4).prop_map(|level| Compression::Zstd { level })
        ],
        1usize..=32,
        prop_oneof![
            Just(256usize),
            Just(512usize),
            Just(4096usize),
            256usize..=65536
        ],
        prop::sample::select(vec![0u32, 10]),
        any::<bool>(),
        // A dictionary (with zstd): none, raw content, or trained (which
        // small tables fail, leaving them without one).
        prop::sample::select(vec![(0u32, 0u32), (512, 0), (4096, 0), (1024, 16384)]),
    )
        .prop_map(
            |(
                compression,
                restart_interval,
                block_size,
                bloom_bits_per_key,
                block_align,
                (max_dict_bytes, zstd_max_train_bytes),
            )| {
                TableOptions {
                    block_size,
                    restart_interval,
                    bloom_bits_per_key,
                    compression,
                    compression_opts: CompressionOptions {
                        max_dict_bytes,
                        zstd_max_train_bytes,
                    },
                    block_align,
                }
            },
        )
}

fn entries() -> impl Strategy<Value = Vec<Entry>> {
    prop::collection::btree_map(user_key(), versions(), 0..120).prop_map(|m| {
        let mut out = Vec::new();
        for (user_key, versions) in m {
            for (seqno, (delete, value)) in versions.into_iter().rev() {
                out.push(Entry {
                    user_key: user_key.clone(),
                    seqno,
                    kind: if delete {
                        ValueKind::Delete
                    } else {
                        ValueKind::Put
                    },
                    value: if delete { Vec::new() } else { value },
                });
            }
        }
        out
    })
}

fn targets() -> impl Strategy<Value = Vec<(Vec<u8>, u64)>> {
    prop::collection::vec((user_key(), prop_oneof![0u64..70, Just(MAX_SEQNO)]), 0..20)
}

fn seek_key(user_key: &[u8], seqno: u64) -> Vec<u8> {
    let mut k = Vec::new();
    encode_seek_key(&mut k, user_key, seqno);
    k
}

fn check_table(
    entries: &[Entry],
    options: TableOptions,
    extra_targets: &[(Vec<u8>, u64)],
    walk: &[u8],
) {
    let (bytes, props) = build(entries, options.clone());
    assert_eq!(props.num_entries, entries.len() as u64);
    check_layout(&open(bytes.clone()));
    for path in READ_PATHS {
        let table = open_via(path, bytes.clone(), TableReadOptions::default()).unwrap();
        assert_eq!(table.properties(), &props);
        check_reads(&table, entries, extra_targets, walk);
    }
}

/// The data blocks of an aligned table (format version 5) each span as
/// few aligned units as their size needs, and padding (fewer zeros than
/// the alignment, ending on a multiple) comes only before a block that
/// would have spanned one more; nothing follows the last block.
fn check_layout(table: &Table) {
    let p = table.properties();
    let a = p.data_block_alignment;
    if a == 0 {
        assert!(p.format_version < FORMAT_VERSION_ALIGN_FITTING);
        return;
    }
    assert_eq!(p.format_version, FORMAT_VERSION_ALIGN_FITTING);
    let mut end = 0;
    for (_, h) in table.index_entries().unwrap() {
        let stored = h.size + BLOCK_TRAILER_LEN as u64;
        let needed = stored.div_ceil(a);
        assert_eq!((h.offset % a + stored).div_ceil(a), needed, "{h:?}");
        if h.offset != end {
            assert_eq!(h.offset, end.next_multiple_of(a), "{h:?}");
            assert!((end % a + stored).div_ceil(a) > needed, "{h:?}");
        }
        end = h.end_with_trailer().unwrap();
    }
    assert_eq!(p.data_bytes, end);
}

/// Every read of `table` (scans both ways, lookups, seeks, a random walk,
/// verification) against the model.
fn check_reads(
    table: &Arc<Table>,
    entries: &[Entry],
    extra_targets: &[(Vec<u8>, u64)],
    walk: &[u8],
) {
    // Full forward and backward iteration.
    assert_eq!(scan_forward(table), entries);
    let mut it = table.iter();
    it.seek_to_last().unwrap();
    let mut back = Vec::new();
    while it.valid() {
        back.push(current(&it));
        it.prev().unwrap();
    }
    back.reverse();
    assert_eq!(back, entries);

    // Point lookups: every user key at several seqnos, plus random keys.
    let mut lookups: Vec<(Vec<u8>, u64)> = Vec::new();
    for e in entries {
        for s in [
            e.seqno,
            e.seqno.saturating_sub(1),
            e.seqno + 1,
            MAX_SEQNO,
            0,
        ] {
            lookups.push((e.user_key.clone(), s));
        }
    }
    lookups.extend_from_slice(extra_targets);
    for (user_key, seqno) in &lookups {
        let got = table.get(user_key, *seqno).unwrap();
        let want = model_get(entries, user_key, *seqno);
        match (got, want) {
            (None, None) => {}
            (Some(g), Some(w)) => {
                assert_eq!(
                    (g.seqno, g.kind, &g.value[..]),
                    (w.seqno, w.kind, &w.value[..])
                );
            }
            (g, w) => panic!("get({user_key:?}, {seqno}): table {g:?}, model {w:?}"),
        }
        if want.is_some() {
            assert!(table.may_contain(user_key), "bloom false negative");
        }
    }

    // seek and seek_for_prev to entry keys and to seek keys.
    let mut targets: Vec<Vec<u8>> = entries.iter().map(Entry::ikey).collect();
    targets.extend(lookups.iter().map(|(k, s)| seek_key(k, *s)));
    let mut it = table.iter();
    for target in &targets {
        let lb = lower_bound(entries, target);
        it.seek(target).unwrap();
        assert_eq!(
            it.valid().then(|| current(&it)),
            entries.get(lb).cloned(),
            "seek {target:?}"
        );
        // Last entry <= target.
        let exact = entries.get(lb).is_some_and(|e| e.ikey() == *target);
        let want = if exact { Some(lb) } else { lb.checked_sub(1) };
        it.seek_for_prev(target).unwrap();
        assert_eq!(
            it.valid().then(|| current(&it)),
            want.and_then(|i| entries.get(i)).cloned(),
            "seek_for_prev {target:?}"
        );
    }

    // A random walk mixing next and prev from a random start.
    if !entries.is_empty() {
        let mut it = table.iter();
        let mut pos: Option<usize> = None;
        for step in walk {
            match step % 6 {
                0 => {
                    let i = (*step as usize * 7919) % entries.len();
                    it.seek(&entries[i].ikey()).unwrap();
                    pos = Some(i);
                }
                1 | 2 => {
                    it.next().unwrap();
                    pos = pos.and_then(|p| (p + 1 < entries.len()).then_some(p + 1));
                }
                3 | 4 => {
                    it.prev().unwrap();
                    pos = pos.and_then(|p| p.checked_sub(1));
                }
                _ => {
                    if step % 12 == 5 {
                        it.seek_to_first().unwrap();
                        pos = Some(0);
                    } else {
                        it.seek_to_last().unwrap();
                        pos = Some(entries.len() - 1);
                    }
                }
            }
            assert_eq!(
                it.valid().then(|| current(&it)),
                pos.map(|p| entries[p].clone())
            );
        }
    }
    table.verify().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn table_matches_model(
        entries in entries(),
        options in options(),
        targets in targets(),
        walk in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        check_table(&entries, options, &targets, &walk);
    }
}

#[test]
fn empty_table() {
    check_table(
        &[],
        TableOptions::default(),
        &[(b"a".to_vec(), 5)],
        &[1, 2, 3],
    );
}

#[test]
fn one_block_per_entry_and_huge_values() {
    let mut entries = Vec::new();
    for i in 0..50u32 {
        entries.push(Entry {
            user_key: format!("k{i:03}").into_bytes(),
            seqno: u64::from(i) + 1,
            kind: ValueKind::Put,
            value: vec![b'v'; if i % 10 == 0 { 70_000 } else { 300 }],
        });
    }
    for compression in [Compression::None, Compression::Zstd { level: 1 }] {
        let options = TableOptions {
            block_size: 256,
            restart_interval: 1,
            compression,
            ..Default::default()
        };
        check_table(&entries, options, &[], &[0, 1, 3, 3, 1, 1, 4]);
    }
}
