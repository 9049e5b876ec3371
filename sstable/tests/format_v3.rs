//! Format version 3 (range deletions) and what it leaves alone.
//!
//! - `fixtures/format-v3/` holds version-3 tables written when version 3
//!   was introduced, from `seed_entries()` and `seed_range_tombstones()`
//!   (and `seed_lone_tombstones()` for the table of tombstones only):
//!   aligned, back to back, compressed. They are read through every read
//!   path, and this crate must still write the unaligned ones byte for
//!   byte (all but the creation time). Aligned tables are written in
//!   version 5 since it exists: with these small entries their data
//!   blocks are where version 3 put them (same handles, same bytes), only
//!   the padding after the last block and the version differ. So they
//!   can no longer be regenerated (that switch went with version 5):
//!   they are what older builds wrote.
//! - A table without range deletions is written as before version 3
//!   existed: unaligned in version 1, byte for byte; aligned in version
//!   5, its data blocks as version 2 placed them. The fixtures in
//!   `fixtures/before-v3/` were written by the builder of 80a29ca (they
//!   are its fuzz seeds: `git show
//!   80a29ca:fuzz/corpus/sstable_reader/seed-none`), three in version 2
//!   (aligned) and `zstd` in version 1; all four still read on every
//!   path.

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::*;
use strata_sstable::*;

fn fixture_path(dir: &str, name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir)
        .join(format!("{name}.sst"))
}

fn fixture(dir: &str, name: &str) -> Bytes {
    let path = fixture_path(dir, name);
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// Asserts that two tables are the same bytes, except for the value of
/// `strata.creation_time` (the build's clock) and the properties block's
/// checksum that covers it.
fn assert_same_but_creation_time(built: &Bytes, fixture: &Bytes, what: &str) {
    assert_eq!(built.len(), fixture.len(), "{what}: file sizes differ");
    let (a, b) = (open(built.clone()), open(fixture.clone()));
    let props_handle = |t: &Table| {
        t.meta_index_entries()
            .iter()
            .find(|(n, _)| n == META_PROPERTIES.as_bytes())
            .map(|(_, h)| *h)
            .unwrap()
    };
    let h = props_handle(&a);
    assert_eq!(h, props_handle(&b), "{what}: properties block moved");
    let (start, end) = (
        h.offset as usize,
        (h.offset + h.size) as usize + BLOCK_TRAILER_LEN,
    );
    assert!(
        built[..start] == fixture[..start],
        "{what}: bytes before the properties differ"
    );
    assert!(
        built[end..] == fixture[end..],
        "{what}: bytes after the properties differ"
    );
    let mut pa = a.properties().clone();
    let pb = b.properties();
    pa.creation_time = pb.creation_time;
    assert_eq!(&pa, pb, "{what}: properties differ");
}

/// Asserts that `built` (version 5) holds the data blocks of `fixture`
/// (version 2 or 3, aligned) at the same offsets with the same bytes: the
/// padding rules agree for blocks that each fit a unit and nearly fill
/// it. Only the end of the data region differs: version 5 writes no
/// padding after the last block.
fn assert_same_data_blocks(built: &Bytes, fixture: &Bytes, what: &str) {
    let (a, b) = (open(built.clone()), open(fixture.clone()));
    assert_eq!(a.footer().version, FORMAT_VERSION_ALIGN_FITTING, "{what}");
    assert!(b.footer().version < FORMAT_VERSION_ALIGN_FITTING, "{what}");
    let blocks = a.index_entries().unwrap();
    assert_eq!(blocks, b.index_entries().unwrap(), "{what}: index differs");
    let alignment = b.properties().data_block_alignment;
    assert_eq!(a.properties().data_block_alignment, alignment, "{what}");
    let end = blocks
        .last()
        .map_or(0, |(_, h)| h.end_with_trailer().unwrap());
    assert!(built[..end as usize] == fixture[..end as usize], "{what}");
    assert_eq!(a.properties().data_bytes, end, "{what}: padded at the end");
    assert_eq!(
        b.properties().data_bytes,
        end.next_multiple_of(alignment),
        "{what}"
    );
}

fn small() -> TableOptions {
    TableOptions {
        block_size: 256,
        restart_interval: 4,
        ..TableOptions::default()
    }
}

/// The version-3 fixtures: name, options, with point entries.
fn v3_fixtures() -> [(&'static str, TableOptions, bool); 4] {
    [
        ("aligned", small(), true),
        (
            "unaligned",
            TableOptions {
                block_align: false,
                ..small()
            },
            true,
        ),
        (
            "zstd",
            TableOptions {
                compression: Compression::Zstd { level: 1 },
                ..small()
            },
            true,
        ),
        ("tombstones-only", TableOptions::default(), false),
    ]
}

fn build_v3(options: TableOptions, with_points: bool) -> (Bytes, TableProperties, TableBounds) {
    if with_points {
        build_with_tombstones(&seed_entries(), &seed_range_tombstones(), options)
    } else {
        build_with_tombstones(&[], &seed_lone_tombstones(), options)
    }
}

#[test]
fn tables_without_range_deletions_are_written_byte_for_byte_as_before_version_3() {
    let entries = seed_entries();
    let nofilter = TableOptions {
        bloom_bits_per_key: 0,
        restart_interval: 1,
        ..small()
    };
    // Options as `write_fuzz_seeds` in builder.rs gave them; the version
    // they were written in.
    let cases = [
        ("none", small(), true, 2),
        ("nofilter", nofilter, true, 2),
        (
            "zstd",
            TableOptions {
                compression: Compression::Zstd { level: 1 },
                ..small()
            },
            true,
            1,
        ),
        ("empty", TableOptions::default(), false, 2),
    ];
    for (name, options, with_entries, version) in cases {
        let entries = if with_entries { &entries[..] } else { &[] };
        let file = fixture("before-v3", name);
        for path in READ_PATHS {
            let what = format!("{name} read {path:?}");
            let table = open_via(path, file.clone(), TableReadOptions::default())
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            table.verify().unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(table.footer().version, version, "{what}");
            assert_eq!(scan_forward(&table), entries, "{what}");
        }
        let (built, props) = build(entries, options);
        if version == FORMAT_VERSION_ALIGNED {
            assert_eq!(props.format_version, FORMAT_VERSION_ALIGN_FITTING, "{name}");
            assert_same_data_blocks(&built, &file, name);
        } else {
            assert_eq!(props.format_version, version, "{name}");
            assert_same_but_creation_time(&built, &file, name);
        }
    }
}
#[test]
fn version_3_fixtures_read_on_every_path_and_are_written_again_byte_for_byte() {
    for (name, options, with_points) in v3_fixtures() {
        let file = fixture("format-v3", name);
        let (built, props, bounds) = build_v3(options.clone(), with_points);
        if props.data_block_alignment > 0 {
            assert_same_data_blocks(&built, &file, name);
        } else {
            assert_same_but_creation_time(&built, &file, name);
        }

        let (entries, tombstones) = if with_points {
            (seed_entries(), seed_range_tombstones())
        } else {
            (Vec::new(), seed_lone_tombstones())
        };
        let want = FragmentedRangeTombstones::fragment(tombstones.clone());
        for path in READ_PATHS {
            let what = format!("{name} read {path:?}");
            let table = open_via(path, file.clone(), TableReadOptions::default())
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            table.verify().unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(table.footer().version, 3, "{what}");
            let p = table.properties();
            assert_eq!(p.format_version, 3, "{what}");
            let alignment = match (options.block_align, &options.compression) {
                (true, Compression::None) => options.block_size.min(4096) as u64,
                _ => 0,
            };
            assert_eq!(p.data_block_alignment, alignment, "{what}");
            assert_eq!(p.num_range_deletions, want.len() as u64, "{what}");
            assert_eq!(**table.range_tombstones().unwrap(), want, "{what}");
            assert_eq!(table.bounds(), bounds, "{what}");
            assert_eq!(scan_forward(&table), entries, "{what}");
            for e in &entries {
                let found = table.get(&e.user_key, MAX_SEQNO).unwrap().unwrap();
                let newest = model_get(&entries, &e.user_key, MAX_SEQNO).unwrap();
                assert_eq!((found.seqno, found.kind), (newest.seqno, newest.kind));
            }
            for t in &tombstones {
                assert!(
                    table.max_covering_tombstone(&t.start, MAX_SEQNO).unwrap() >= t.seqno,
                    "{what}: {t:?}"
                );
            }
        }
    }
}
