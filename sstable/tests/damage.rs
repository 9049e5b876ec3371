//! Exhaustive damage: every truncation and every single-byte flip (each
//! bit alone and all eight together) of small tables. Every read path must
//! either return exactly the right data or `Err(Corruption)` naming an
//! offset inside the damaged block, and at least one path must notice.
//!
//! Every byte of a table is covered by a check: block contents and type
//! bytes by their block's CRC, block CRCs by themselves, footer fields by
//! the footer CRC, the footer CRC by itself, the magic by comparison, the
//! zero padding that aligns data blocks by `verify`. So no flip is
//! harmless, and the test asserts that each one is detected.

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::*;
use strata_sstable::*;

fn entries() -> Vec<Entry> {
    let mut out = Vec::new();
    for i in 0..24u32 {
        let user_key = format!("key{:03}", i * 3).into_bytes();
        let versions = 1 + i % 3;
        for v in 0..versions {
            let seqno = u64::from(100 - v * 10 + i);
            let kind = if (i + v) % 5 == 4 {
                ValueKind::Delete
            } else {
                ValueKind::Put
            };
            let value = if kind == ValueKind::Delete {
                Vec::new()
            } else {
                format!("val-{i}-{v}-val-{i}-{v}").into_bytes()
            };
            out.push(Entry {
                user_key: user_key.clone(),
                seqno,
                kind,
                value,
            });
        }
    }
    sort_entries(&mut out);
    out
}

/// Byte ranges of every block (trailer included) and of the footer.
fn regions(table: &Table) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = table
        .index_entries()
        .unwrap()
        .into_iter()
        .map(|(_, h)| (h.offset, h.offset + h.size + BLOCK_TRAILER_LEN as u64))
        .collect();
    // Alignment padding between data blocks (and after the last, to the
    // end of the data region) is a region of its own, checked (for
    // zeros) by `verify`.
    let starts = out
        .iter()
        .skip(1)
        .map(|&(start, _)| start)
        .chain([table.properties().data_bytes]);
    let gaps: Vec<(u64, u64)> = out
        .iter()
        .zip(starts)
        .map(|(&(_, end), next)| (end, next))
        .filter(|(s, e)| s < e)
        .collect();
    out.extend(gaps);
    for (_, h) in table.meta_index_entries() {
        out.push((h.offset, h.offset + h.size + BLOCK_TRAILER_LEN as u64));
    }
    for h in [table.footer().index, table.footer().meta_index] {
        out.push((h.offset, h.offset + h.size + BLOCK_TRAILER_LEN as u64));
    }
    let size = table.file_size();
    out.push((size - FOOTER_LEN as u64, size));
    out.sort();
    // The regions tile the file exactly.
    let mut end = 0;
    for &(s, e) in &out {
        assert_eq!(s, end, "regions must tile the file");
        end = e;
    }
    assert_eq!(end, size);
    out
}

/// Runs every read path; returns the errors seen. Panics if any path
/// returns data that differs from the model.
fn exercise(
    path: ReadPath,
    bytes: Bytes,
    options: TableReadOptions,
    model: &[Entry],
    tombstones: &FragmentedRangeTombstones,
    check_data: bool,
) -> Vec<Error> {
    let mut errors = Vec::new();
    let table = match open_via(path, bytes, options) {
        Ok(t) => t,
        Err(e) => return vec![e],
    };
    // Range tombstones are decoded and checked at open: a table that
    // opened holds exactly the ones written.
    let got = table.range_tombstones().map(|t| &**t);
    if check_data {
        assert_eq!(
            got.unwrap_or(&FragmentedRangeTombstones::default()),
            tombstones,
            "range tombstones differ"
        );
    }
    for e in model {
        let _ = table.max_covering_tombstone(&e.user_key, e.seqno);
    }
    let mut it = table.iter();
    let mut seen = Vec::new();
    let mut r = it.seek_to_first();
    while r.is_ok() && it.valid() {
        seen.push(current(&it));
        r = it.next();
    }
    if let Err(e) = r {
        assert!(!it.valid());
        errors.push(e);
    }
    if check_data {
        assert_eq!(
            &seen[..],
            &model[..seen.len()],
            "forward scan returned wrong data"
        );
    }
    let mut back = Vec::new();
    let mut r = it.seek_to_last();
    while r.is_ok() && it.valid() {
        back.push(current(&it));
        r = it.prev();
    }
    if let Err(e) = r {
        errors.push(e);
    }
    if check_data {
        back.reverse();
        assert_eq!(
            &back[..],
            &model[model.len() - back.len()..],
            "backward scan returned wrong data"
        );
    }
    for e in model {
        for seqno in [MAX_SEQNO, e.seqno] {
            match table.get(&e.user_key, seqno) {
                Ok(got) if check_data => {
                    let want = model_get(model, &e.user_key, seqno).unwrap();
                    let got = got.expect("a present key was not found");
                    assert_eq!(
                        (got.seqno, got.kind, &got.value[..]),
                        (want.seqno, want.kind, &want.value[..])
                    );
                }
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
        let mut target = Vec::new();
        encode_seek_key(&mut target, &e.user_key, e.seqno);
        if let Err(err) = it.seek(&target) {
            errors.push(err);
        } else if check_data && it.valid() {
            assert_eq!(
                current(&it).seqno,
                e.seqno,
                "seek landed on the wrong entry"
            );
        }
    }
    if let Err(e) = table.verify() {
        errors.push(e);
    }
    errors
}

fn run(options: TableOptions, tombstones: &[RangeTombstone]) -> (usize, usize) {
    let model = entries();
    let (bytes, props, _) = build_with_tombstones(&model, tombstones, options);
    let fragmented = FragmentedRangeTombstones::fragment(tombstones.to_vec());
    let intact = open(bytes.clone());
    assert!(
        props.num_data_blocks >= 3,
        "want a few blocks, got {}",
        props.num_data_blocks
    );
    assert!(
        bytes.len() <= 4096,
        "keep the table small: {} bytes",
        bytes.len()
    );
    let regions = regions(&intact);
    for path in READ_PATHS {
        let errors = exercise(
            path,
            bytes.clone(),
            TableReadOptions::default(),
            &model,
            &fragmented,
            true,
        );
        assert!(errors.is_empty(), "{path:?}: {errors:?}");
    }

    // Truncation: the footer is gone or shifted, so open must fail.
    for len in 0..bytes.len() {
        let cut = bytes.slice(..len);
        for path in READ_PATHS {
            match open_via(path, cut.clone(), TableReadOptions::default()) {
                Err(Error::Corruption { offset, .. }) => {
                    assert!(offset <= len as u64, "{path:?} len {len}: offset {offset}")
                }
                other => panic!("{path:?} truncated to {len}: {other:?}"),
            }
        }
    }

    let mut cases = 0;
    for pos in 0..bytes.len() {
        let (start, end) = *regions
            .iter()
            .find(|(s, e)| (*s..*e).contains(&(pos as u64)))
            .unwrap();
        for mask in [1u8, 2, 4, 8, 16, 32, 64, 128, 0xff] {
            let mut damaged = bytes.to_vec();
            damaged[pos] ^= mask;
            let damaged = Bytes::from(damaged);
            for path in READ_PATHS {
                let errors = exercise(
                    path,
                    damaged.clone(),
                    TableReadOptions::default(),
                    &model,
                    &fragmented,
                    true,
                );
                assert!(
                    !errors.is_empty(),
                    "{path:?}: flip {mask:#x} at {pos} went unnoticed"
                );
                for e in &errors {
                    match e {
                        Error::Corruption { offset, .. } => assert!(
                            (start..end).contains(offset),
                            "{path:?}: flip at {pos} (block {start}..{end}) reported at {offset}: {e}"
                        ),
                        other => panic!("{path:?}: flip at {pos}: not corruption: {other}"),
                    }
                }
                // Without checksums the decoders see the damage raw: they
                // may return wrong data but must not panic or allocate
                // unboundedly.
                let unchecked = TableReadOptions {
                    verify_checksums: false,
                    ..Default::default()
                };
                let _ = exercise(path, damaged.clone(), unchecked, &model, &fragmented, false);
            }
            cases += 1;
        }
    }
    (bytes.len(), cases)
}

#[test]
fn every_truncation_and_flip_is_detected_uncompressed() {
    let (len, cases) = run(
        TableOptions {
            block_size: 256,
            restart_interval: 4,
            ..Default::default()
        },
        &[],
    );
    println!("uncompressed table of {len} bytes: {len} truncations, {cases} flips, all detected");
}

#[test]
fn every_truncation_and_flip_is_detected_zstd() {
    let options = TableOptions {
        block_size: 256,
        restart_interval: 4,
        compression: Compression::Zstd { level: 3 },
        ..Default::default()
    };
    let (len, cases) = run(options, &[]);
    println!("zstd table of {len} bytes: {len} truncations, {cases} flips, all detected");
}

#[test]
fn every_truncation_and_flip_is_detected_with_range_deletions() {
    // Version 3, data blocks back to back: the range-del block sits
    // between the index and the properties, and is covered like them.
    let options = TableOptions {
        block_size: 256,
        restart_interval: 4,
        block_align: false,
        ..Default::default()
    };
    let tombstones = [
        tombstone("key010", Some("key020"), 120),
        tombstone("key015", Some("key030"), 90),
        tombstone("key060", None, 130),
    ];
    let (len, cases) = run(options, &tombstones);
    println!(
        "table with range deletions of {len} bytes: {len} truncations, {cases} flips, all detected"
    );
}
