//! Every report function on damaged input: each single-byte flip and each
//! truncation of a small table (plain and zstd), WAL and MANIFEST. Nothing
//! may panic; in a table every byte is covered by a checksum or the footer
//! checks, so `check` and `verify` must report every flip, at or before it.

use std::path::Path;

use strata::inspect::{FileMeta, LargestBound, VersionEdit};
use strata_sstable::bytes::Bytes;
use strata_sstable::{Compression, TableBuilder, TableOptions, ValueKind};
use strata_wal::Writer;

use crate::escape::Style;
use crate::keyspaces::KeyspaceNames;
use crate::output::Report;
use crate::scan::Bounds;
use crate::{check, identify, manifest, raw, recompress, scan, verify, wal};

fn table(compression: Compression) -> Vec<u8> {
    let options = TableOptions {
        block_size: 256,
        compression,
        ..TableOptions::default()
    };
    let mut b = TableBuilder::new(Vec::new(), options).unwrap();
    for i in 0..60u64 {
        let key = format!("key{i:03}");
        let kind = if i % 5 == 0 {
            ValueKind::Delete
        } else {
            ValueKind::Put
        };
        b.add(key.as_bytes(), 1000 - i, kind, "v".repeat(40).as_bytes())
            .unwrap();
    }
    b.finish().unwrap().writer
}

fn wal_log() -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    for r in 0..6u64 {
        let mut batch = Vec::new();
        batch.extend_from_slice(&(1 + 3 * r).to_le_bytes());
        batch.extend_from_slice(&3u32.to_le_bytes());
        for op in 0..3u8 {
            // put, delete, put; the last in keyspace r (flag 0x80, varint id)
            if op == 2 && r > 0 {
                batch.extend_from_slice(&[1 | 0x80, r as u8]);
            } else {
                batch.push(u8::from(op != 1));
            }
            batch.extend_from_slice(&[4, b'k', b'0' + r as u8, b'-', b'0' + op]);
            if op != 1 {
                batch.extend_from_slice(&[2, b'v', b'v']);
            }
        }
        w.add_record(&batch).unwrap();
    }
    w.into_inner()
}

fn manifest_log() -> Vec<u8> {
    let meta = |number: u64| FileMeta {
        number,
        size: 1000 + number,
        smallest: b"a".to_vec(),
        largest: b"m".to_vec(),
        largest_bound: LargestBound::Included,
        smallest_seqno: number,
        largest_seqno: number + 10,
        blob_files: Vec::new(),
        blob_refs: Vec::new(),
    };
    let edits = [
        VersionEdit {
            log_number: Some(1),
            next_file_number: Some(2),
            last_sequence: Some(0),
            ..VersionEdit::default()
        },
        VersionEdit {
            log_number: Some(3),
            next_file_number: Some(5),
            last_sequence: Some(20),
            new_files: vec![(0, meta(4))],
            ..VersionEdit::default()
        },
        VersionEdit {
            next_file_number: Some(7),
            new_files: vec![(1, meta(6))],
            deleted_files: vec![(0, 4)],
            ..VersionEdit::default()
        },
        VersionEdit {
            keyspace: 1,
            create_keyspace: Some("events".into()),
            log_number: Some(3),
            next_keyspace_id: Some(2),
            ..VersionEdit::default()
        },
        VersionEdit {
            keyspace: 1,
            log_number: Some(7),
            keyspace_log_numbers: vec![(0, 7)],
            next_file_number: Some(9),
            new_files: vec![(0, meta(8))],
            ..VersionEdit::default()
        },
        VersionEdit {
            keyspace: 2,
            create_keyspace: Some("scratch".into()),
            log_number: Some(7),
            next_keyspace_id: Some(3),
            ..VersionEdit::default()
        },
        VersionEdit {
            keyspace: 2,
            drop_keyspace: true,
            ..VersionEdit::default()
        },
    ];
    let mut w = Writer::new(Vec::new());
    for e in edits {
        let mut buf = Vec::new();
        e.encode(&mut buf);
        w.add_record(&buf).unwrap();
    }
    w.into_inner()
}

/// Runs every command that applies to any file on `data`.
fn run_all(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    let style = Style::default();
    let _ = identify::identify(data);
    let _ = check::check(&bytes, true);
    let _ = check::check(&bytes, false);
    let bounds = Bounds {
        prefix: Some(b"key01".to_vec()),
        ..Bounds::default()
    };
    let _ = scan::scan(&bytes, &bounds, true, style);
    let _ = scan::scan(&bytes, &Bounds::default(), false, Style { hex: true });
    let _ = verify::verify(&bytes);
    let _ = raw::raw(&bytes, style).dump_text();
    let _ = recompress::recompress(&bytes, &[], false);
    let _ = wal::dump(data, true, style, None);
    let _ = wal::dump(data, false, style, Some(&KeyspaceNames::default()));
    let _ = manifest::dump(Path::new("MANIFEST-000001"), data, style);
}

fn damaged(original: &[u8], mut each: impl FnMut(usize, &[u8])) {
    for pos in 0..original.len() {
        for mask in [0x01, 0x80] {
            let mut bad = original.to_vec();
            bad[pos] ^= mask;
            each(pos, &bad);
        }
    }
    for len in 0..original.len() {
        each(usize::MAX, &original[..len]);
    }
}

#[test]
fn healthy_inputs_check_out() {
    for t in [
        table(Compression::None),
        table(Compression::Zstd { level: 1 }),
    ] {
        let bytes = Bytes::from(t.clone());
        assert_eq!(identify::identify(&t).kind, identify::Kind::Table);
        assert!(check::check(&bytes, true).ok());
        assert!(verify::verify(&bytes).ok());
        assert!(raw::raw(&bytes, Style::default()).ok());
        assert_eq!(check::check(&bytes, true).entries_read, 60);
    }
    let log = wal_log();
    assert_eq!(identify::identify(&log).kind, identify::Kind::Wal);
    let w = wal::dump(&log, false, Style::default(), None);
    assert!(w.ok());
    assert_eq!(w.records.len(), 6);
    let keyspaces: Vec<u32> = w.records.iter().map(|r| r.ops[2].keyspace).collect();
    assert_eq!(keyspaces, [0, 1, 2, 3, 4, 5]);
    let m = manifest_log();
    assert_eq!(identify::identify(&m).kind, identify::Kind::Manifest);
    let report = manifest::dump(Path::new("MANIFEST-000001"), &m, Style::default());
    assert!(report.ok(), "{:?}", report.problems);
    let live = report.live.unwrap();
    assert_eq!(live.total_files, 2);
    assert_eq!(live.keyspaces[0].levels[1][0].number, 6);
    assert_eq!(live.keyspaces[1].name, "events");
    assert_eq!(live.keyspaces[1].levels[0][0].number, 8);
    assert_eq!(live.keyspaces.len(), 2, "scratch was dropped");
    assert_eq!(live.log_number, 7);
    let dropped = report.edits.last().unwrap();
    assert!(dropped.drop_keyspace);
    assert_eq!(dropped.keyspace_name.as_deref(), Some("scratch"));
}

#[test]
fn every_flip_in_a_table_is_found_at_or_before_it() {
    for t in [
        table(Compression::None),
        table(Compression::Zstd { level: 1 }),
    ] {
        damaged(&t, |pos, bad| {
            run_all(bad);
            if pos == usize::MAX {
                return;
            }
            let bytes = Bytes::copy_from_slice(bad);
            let v = verify::verify(&bytes);
            let offset = v.problem.as_ref().and_then(|p| p.offset);
            assert!(
                offset.is_some_and(|o| o <= pos as u64),
                "flip at {pos}: {v:?}"
            );
            assert!(!check::check(&bytes, true).ok(), "flip at {pos}");
        });
    }
}

#[test]
fn damaged_logs_never_panic() {
    for log in [wal_log(), manifest_log()] {
        damaged(&log, |_, bad| run_all(bad));
    }
    for junk in [&b""[..], b"\n", b"MANIFEST-\n", &[0u8; 100], &[0xff; 64]] {
        run_all(junk);
    }
}
