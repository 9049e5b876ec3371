//! Format version 5: aligned data blocks padded only where it saves a
//! read. A block that fits one aligned unit never straddles two, as in
//! version 2, and no block spans more units than its size needs; a block
//! a little larger than a unit (a 4 KiB value) follows the previous one
//! without padding (but where it would spill into a third unit), so a
//! table of such values takes about its data, not twice it; nothing
//! follows the last block. Read on every path, checked by `verify`, and
//! held to its version at open.

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use strata_sstable::*;

fn entry(i: u32, value_len: usize) -> Entry {
    Entry {
        user_key: format!("key{i:013}").into_bytes(),
        seqno: u64::from(i) + 1,
        kind: ValueKind::Put,
        value: (0..value_len).map(|j| (i as usize * 7 + j) as u8).collect(),
    }
}

/// Entries whose values are all `value_len` bytes.
fn uniform(n: u32, value_len: usize) -> Vec<Entry> {
    (0..n).map(|i| entry(i, value_len)).collect()
}

/// Large and small entries mixed: runs of small values (several to a
/// block), values around a unit (blocks that fit it, blocks just over
/// it), and values of several units; some deletions.
fn mixed() -> Vec<Entry> {
    (0..400u32)
        .map(|i| {
            let len = match i % 40 {
                0 => 4200,
                7 => 4076,
                20 => 3000,
                33 => 9000,
                k => [10, 100, 40, 0][k as usize % 4],
            };
            let mut e = entry(i, len);
            if i % 13 == 5 {
                e.kind = ValueKind::Delete;
                e.value.clear();
            }
            e
        })
        .collect()
}

/// Data block handles of a table, in order.
fn handles(table: &Table) -> Vec<BlockHandle> {
    table
        .index_entries()
        .unwrap()
        .into_iter()
        .map(|(_, h)| h)
        .collect()
}

/// Asserts the version 5 rule on a table's data blocks: a block spans as
/// few units as its size needs (one that fits a unit lies in one); a gap
/// is fewer than `a` bytes and ends on a multiple, before a block that
/// would otherwise have spanned one unit more; nothing follows the last
/// block. Returns (blocks padded before, blocks right after the previous
/// one, blocks larger than a unit).
fn assert_version_5_layout(table: &Table) -> (usize, usize, usize) {
    let p = table.properties();
    assert_eq!(table.footer().version, FORMAT_VERSION_ALIGN_FITTING);
    assert_eq!(p.format_version, FORMAT_VERSION_ALIGN_FITTING);
    let a = p.data_block_alignment;
    assert!(a.is_power_of_two());
    let mut end = 0;
    let (mut padded, mut adjacent, mut large) = (0, 0, 0);
    for h in handles(table) {
        let stored = h.size + BLOCK_TRAILER_LEN as u64;
        let needed = stored.div_ceil(a);
        assert_eq!(
            (h.offset % a + stored).div_ceil(a),
            needed,
            "a block of {stored} bytes at {} spans more units of {a} than it needs",
            h.offset
        );
        large += usize::from(needed > 1);
        if h.offset == end {
            adjacent += 1;
        } else {
            assert_eq!(h.offset, end.next_multiple_of(a), "padding at {end}");
            assert!(
                (end % a + stored).div_ceil(a) > needed,
                "needless padding at {end}"
            );
            padded += 1;
        }
        end = h.end_with_trailer().unwrap();
    }
    assert_eq!(p.data_bytes, end, "padding after the last block");
    (padded, adjacent, large)
}

#[test]
fn a_table_of_4_kib_values_takes_about_its_data_not_twice() {
    let entries = uniform(500, 4096);
    let (bytes, p) = build(&entries, TableOptions::default());
    let data = p.raw_key_bytes + p.raw_value_bytes;
    // One entry a block: its header and restart array, and the trailer,
    // are ~20 bytes of 4,121; padding each to 8 KiB took twice the data.
    assert!(
        p.data_bytes < data + data / 100,
        "{} bytes of data blocks for {data} bytes of entries",
        p.data_bytes
    );
    assert!((bytes.len() as u64) < data + data / 50);
    let table = open(bytes);
    let (padded, adjacent, large) = assert_version_5_layout(&table);
    // Each block is 21 bytes over a unit: it reaches into a third unit
    // about once in 195 blocks, and is padded by a few bytes there.
    assert_eq!(large, 500);
    assert!((1..=5).contains(&padded), "{padded} padded");
    assert_eq!(padded + adjacent, 500);
}

#[test]
fn a_block_larger_than_a_unit_spans_as_few_units_as_it_needs() {
    // 16 KiB blocks of small entries, aligned to 4 KiB: each spans four
    // pages, as in version 2, not the five an unaligned one spans.
    let entries = uniform(20_000, 100);
    let options = TableOptions {
        block_size: 16 << 10,
        ..TableOptions::default()
    };
    let (bytes, p) = build(&entries, options);
    assert_eq!(p.data_block_alignment, 4096);
    let table = open(bytes);
    let (padded, _, large) = assert_version_5_layout(&table);
    assert!(large > 100 && padded + 1 >= large, "{padded} of {large}");
    assert_eq!(scan_forward(&table), entries);
}

#[test]
fn small_entries_are_aligned_as_before_and_nothing_pads_the_last_block() {
    // 100-byte values: blocks of 3.6-4 KiB, each of which fits one unit
    // but not in what the previous block left of its unit, so every block
    // starts on a multiple of 4 KiB as in version 2.
    let entries = uniform(20_000, 100);
    let (bytes, p) = build(&entries, TableOptions::default());
    let table = open(bytes);
    let blocks = handles(&table);
    assert!(blocks.len() > 500);
    for h in &blocks {
        assert_eq!(h.offset % 4096, 0, "a block at {}", h.offset);
    }
    let (padded, adjacent, large) = assert_version_5_layout(&table);
    assert_eq!((padded, adjacent, large), (blocks.len() - 1, 1, 0));
    // Version 2 padded the last block too.
    let last = blocks.last().unwrap();
    assert_eq!(p.data_bytes, last.end_with_trailer().unwrap());
    assert_ne!(p.data_bytes % 4096, 0);
    assert_eq!(scan_forward(&table), entries);
}

#[test]
fn a_block_that_fits_a_unit_shares_one_with_the_end_of_a_larger_block() {
    // Alignment 256 (the block size): large blocks unpadded, blocks that
    // fit a unit padded only when they would cross a multiple of 256.
    let options = TableOptions {
        block_size: 256,
        restart_interval: 4,
        ..TableOptions::default()
    };
    let entries = mixed();
    let (bytes, _) = build(&entries, options);
    let table = open(bytes);
    let (padded, adjacent, large) = assert_version_5_layout(&table);
    assert!(padded > 10, "{padded} padded");
    assert!(adjacent > 10, "{adjacent} adjacent");
    assert!(large > 10, "{large} large");
    // Some block that fits a unit follows another without padding, in
    // the same unit.
    let blocks = handles(&table);
    assert!(blocks.windows(2).any(|w| {
        let end = w[0].end_with_trailer().unwrap();
        w[1].offset == end && end % 256 != 0 && w[1].size + 5 <= 256
    }));
}

/// Every read of a version 5 table through every path, against the
/// model: scans both ways, gets, seeks and seeks for prev, verify.
fn check_every_read(bytes: &Bytes, entries: &[Entry]) {
    for path in READ_PATHS {
        let what = format!("{path:?}");
        let table = open_via(path, bytes.clone(), TableReadOptions::default())
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        table.verify().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_version_5_layout(&table);
        assert_eq!(scan_forward(&table), entries, "{what}");
        let mut it = table.iter();
        it.seek_to_last().unwrap();
        let mut back = Vec::new();
        while it.valid() {
            back.push(current(&it));
            it.prev().unwrap();
        }
        back.reverse();
        assert_eq!(back, entries, "{what}: backward");
        for (i, e) in entries.iter().enumerate() {
            let found = table.get(&e.user_key, MAX_SEQNO).unwrap().unwrap();
            assert_eq!(
                (found.seqno, found.kind, &found.value[..]),
                (e.seqno, e.kind, &e.value[..]),
                "{what}"
            );
            assert!(table.get(&e.user_key, e.seqno - 1).unwrap().is_none());
            it.seek(&e.ikey()).unwrap();
            assert_eq!(current(&it), *e, "{what}: seek");
            it.seek_for_prev(&e.ikey()).unwrap();
            assert_eq!(current(&it), *e, "{what}: seek_for_prev");
            // Between keys: the next one forward, this one backward.
            let mut after = e.user_key.clone();
            after.push(0);
            let target = seek_key(&after);
            it.seek(&target).unwrap();
            assert_eq!(it.valid(), i + 1 < entries.len(), "{what}");
            if i + 1 < entries.len() {
                assert_eq!(current(&it), entries[i + 1], "{what}");
            }
            it.seek_for_prev(&target).unwrap();
            assert_eq!(current(&it), *e, "{what}: seek_for_prev between");
        }
    }
}

fn seek_key(user_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::new();
    encode_seek_key(&mut k, user_key, MAX_SEQNO);
    k
}

#[test]
fn a_version_5_table_of_mixed_entries_reads_on_every_path() {
    let entries = mixed();
    for block_size in [256, 1024, 4096] {
        let options = TableOptions {
            block_size,
            restart_interval: 4,
            ..TableOptions::default()
        };
        let (bytes, _) = build(&entries, options);
        check_every_read(&bytes, &entries);
    }
}

#[test]
fn a_version_5_table_with_range_deletions_stays_version_5() {
    let entries = mixed();
    let tombstones = [
        tombstone("key0000000000010", Some("key0000000000020"), 400),
        tombstone("key0000000000290", None, 500),
    ];
    let (bytes, p, _) = build_with_tombstones(&entries, &tombstones, TableOptions::default());
    assert_eq!(p.format_version, FORMAT_VERSION_ALIGN_FITTING);
    assert_eq!(p.num_range_deletions, 2);
    check_every_read(&bytes, &entries);
    let table = open(bytes);
    assert_eq!(
        table.max_covering_tombstone(b"key0000000000015", MAX_SEQNO),
        Some(400)
    );
}

#[test]
fn a_scan_of_a_version_5_table_reads_ahead() {
    // Blocks back to back and blocks after padding: both continue a scan.
    let entries = mixed();
    let options = TableOptions {
        block_size: 1024,
        ..TableOptions::default()
    };
    let (bytes, p) = build(&entries, options);
    let source = Positional::new(bytes);
    let table = Arc::new(
        Table::open_source(
            Arc::clone(&source) as Arc<dyn BlockSource>,
            TableReadOptions::default(),
        )
        .unwrap(),
    );
    let (padded, adjacent, _) = assert_version_5_layout(&table);
    assert!(padded > 10 && adjacent > 10);
    let before = source.reads.load(Ordering::Relaxed);
    assert_eq!(scan_forward(&table), entries);
    let reads = source.reads.load(Ordering::Relaxed) - before;
    assert!(
        reads * 5 < p.num_data_blocks,
        "{reads} reads for {} blocks",
        p.num_data_blocks
    );
}

#[test]
fn verify_finds_a_nonzero_byte_in_padding_and_reads_do_not_care() {
    let entries = mixed();
    let options = TableOptions {
        block_size: 256,
        restart_interval: 4,
        ..TableOptions::default()
    };
    let (bytes, _) = build(&entries, options);
    let table = open(bytes.clone());
    let blocks = handles(&table);
    let gaps: Vec<(u64, u64)> = blocks
        .windows(2)
        .map(|w| (w[0].end_with_trailer().unwrap(), w[1].offset))
        .filter(|(end, next)| next > end)
        .collect();
    assert!(gaps.len() > 10);
    for &(start, end) in gaps.iter().step_by(7) {
        for at in [start, end - 1] {
            let mut damaged = bytes.to_vec();
            damaged[at as usize] = 0x5a;
            let damaged = Bytes::from(damaged);
            for path in READ_PATHS {
                let table = open_via(path, damaged.clone(), TableReadOptions::default()).unwrap();
                match table.verify() {
                    Err(Error::Corruption { offset, reason }) => {
                        assert_eq!(offset, at, "{path:?}: {reason}");
                        assert!(reason.contains("padding"), "{reason}");
                    }
                    other => panic!("{path:?}: flip at {at} in padding: {other:?}"),
                }
                // No entry lies in padding.
                assert_eq!(scan_forward(&table), entries);
            }
        }
    }
}

/// `bytes` with the properties' `strata.format_version` and the footer's
/// version set to `version` (checksums fixed): a table that says it is
/// another version than the builder wrote.
fn relabel(bytes: &Bytes, version: u32) -> Bytes {
    let table = open(bytes.clone());
    let h = table
        .meta_index_entries()
        .iter()
        .find(|(n, _)| n == META_PROPERTIES.as_bytes())
        .map(|(_, h)| *h)
        .unwrap();
    let footer = *table.footer();
    let mut file = bytes.to_vec();
    let (start, end) = (h.offset as usize, (h.offset + h.size) as usize);
    // Restart interval 1, no shared prefix: the name, then its one-byte
    // varint value.
    let name = b"strata.format_version";
    let at = start
        + file[start..end]
            .windows(name.len())
            .position(|w| w == name)
            .unwrap()
        + name.len();
    assert_eq!(u32::from(file[at]), footer.version);
    file[at] = version as u8;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&file[start..end]);
    hasher.update(&[file[end]]);
    file[end + 1..end + 5].copy_from_slice(&mask_crc(hasher.finalize()).to_le_bytes());
    let n = file.len();
    file[n - FOOTER_LEN..].copy_from_slice(&Footer::encode_version(
        footer.meta_index,
        footer.index,
        version,
    ));
    Bytes::from(file)
}

fn open_error(bytes: Bytes) -> String {
    match Table::open(bytes, TableReadOptions::default()) {
        Err(Error::Corruption { reason, .. }) => reason,
        other => panic!("{other:?}"),
    }
}

#[test]
fn each_version_holds_the_data_region_to_its_own_rule() {
    // An unaligned table (version 3: with a range deletion, so its
    // properties have what version 5 requires too) claiming version 5:
    // version 5 exists only for aligned tables.
    let entries = uniform(200, 100);
    let plain = TableOptions {
        block_align: false,
        ..TableOptions::default()
    };
    let (bytes, p, _) = build_with_tombstones(&entries, &[tombstone("a", Some("b"), 9)], plain);
    assert_eq!((p.format_version, p.data_block_alignment), (3, 0));
    let reason = open_error(relabel(&bytes, 5));
    assert!(
        reason.contains("data block alignment 0 invalid for format version 5"),
        "{reason}"
    );

    // A version 5 table of 4 KiB values (blocks back to back) claiming
    // version 2, 3 or 4: those versions pad after every block, so the
    // index no longer fits the data region.
    let (large, _) = build(&uniform(20, 4096), TableOptions::default());
    assert!(open(relabel(&large, 5)).verify().is_ok());
    for version in [2, 3, 4] {
        let reason = open_error(relabel(&large, version));
        assert!(
            reason.contains("do not follow each other"),
            "{version}: {reason}"
        );
    }
    // Small entries: the blocks are where version 2 puts them, but the
    // last one is not padded.
    let (small, _) = build(&entries, TableOptions::default());
    let reason = open_error(relabel(&small, 2));
    assert!(reason.contains("do not fill the data region"), "{reason}");

    // An aligned version 3 table (padded after the last block too)
    // claiming version 5: the region ends where the last block does.
    let v3 = Bytes::from(
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/format-v3/aligned.sst"),
        )
        .unwrap(),
    );
    assert_eq!(open(v3.clone()).footer().version, 3);
    let reason = open_error(relabel(&v3, 5));
    assert!(reason.contains("do not fill the data region"), "{reason}");

    // A build that predates version 5 refuses it by name (as this one
    // refuses the next).
    let reason = open_error(relabel(&large, FORMAT_VERSION + 1));
    assert!(
        reason.contains(&format!(
            "unsupported format version {}",
            FORMAT_VERSION + 1
        )),
        "{reason}"
    );
}
