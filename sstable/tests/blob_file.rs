//! Blob files: values written and read back by reference and by scan,
//! compressed or not; every damaged byte, every cut and every misdirected
//! reference an error, never a panic or another key's value.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use std::sync::Arc;
use strata_sstable::blob::{BlobFileBuilder, BlobFileReader, BlobRef};
use strata_sstable::bytes::Bytes;
use strata_sstable::{Compression, Error};

/// A file of `values` under keys `k0000…`, and the reference to each.
fn build(values: &[Vec<u8>], compression: Compression) -> (Bytes, Vec<BlobRef>) {
    let mut b = BlobFileBuilder::new(Vec::new(), 3, compression).unwrap();
    let refs = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let at = b.add(key(i).as_bytes(), v).unwrap();
            BlobRef {
                file_number: 5,
                offset: at.offset,
                size: at.size,
            }
        })
        .collect();
    let built = b.finish().unwrap();
    assert_eq!(built.blob_count, values.len() as u64);
    assert_eq!(built.file_size, built.writer.len() as u64);
    (Bytes::from(built.writer), refs)
}

fn key(i: usize) -> String {
    format!("k{i:04}")
}

fn open(bytes: &Bytes) -> Result<BlobFileReader, Error> {
    BlobFileReader::open(Arc::new(bytes.clone()), 5)
}

/// Compressible values of a few sizes, one empty.
fn values() -> Vec<Vec<u8>> {
    (0..20)
        .map(|i| {
            (0..i * 397)
                .map(|j| b"abcdefgh"[(j / 7 + i) % 8])
                .collect::<Vec<u8>>()
        })
        .collect()
}

#[test]
fn values_come_back_by_reference_and_by_scan_with_and_without_compression() {
    for compression in [Compression::None, Compression::Zstd { level: 3 }] {
        let values = values();
        let (file, refs) = build(&values, compression.clone());
        let reader = open(&file).unwrap();
        assert_eq!(reader.keyspace_id(), 3);
        assert_eq!(reader.blob_count(), 20);
        for (i, r) in refs.iter().enumerate() {
            assert_eq!(reader.get(r, key(i).as_bytes()).unwrap(), values[i]);
        }
        let scanned: Vec<_> = reader.iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(scanned.len(), 20);
        for (i, rec) in scanned.iter().enumerate() {
            assert_eq!(rec.key, key(i).as_bytes());
            assert_eq!(rec.value, values[i]);
            assert_eq!((rec.offset, rec.size), (refs[i].offset, refs[i].size));
        }
        if matches!(compression, Compression::Zstd { .. }) {
            let stored: u64 = refs.iter().map(|r| u64::from(r.size)).sum();
            let raw: usize = values.iter().map(Vec::len).sum();
            assert!(stored * 4 < raw as u64, "compressed: {stored} of {raw}");
            assert_eq!(reader.blob_bytes(), stored);
        }
    }
}

#[test]
fn a_misdirected_reference_is_refused() {
    let (file, refs) = build(&values(), Compression::None);
    let reader = open(&file).unwrap();
    let r = refs[3];
    // Another key's reference, or this key's with another key asked.
    assert!(reader
        .get(&refs[4], key(3).as_bytes())
        .unwrap_err()
        .is_corruption());
    assert!(reader.get(&r, b"k9999").unwrap_err().is_corruption());
    // A key of another length moves the record's start: still refused.
    assert!(reader.get(&r, b"k3").unwrap_err().is_corruption());
    let shifted = |offset: u64, size: u32| BlobRef { offset, size, ..r };
    for bad in [
        shifted(r.offset + 1, r.size),
        shifted(r.offset, r.size + 1),
        shifted(r.offset, r.size - 1),
        shifted(0, r.size),
        shifted(u64::MAX, u32::MAX),
        shifted(file.len() as u64, 1),
    ] {
        let e = reader.get(&bad, key(3).as_bytes()).unwrap_err();
        assert!(e.is_corruption(), "{bad:?}: {e}");
    }
    let other_file = BlobRef {
        file_number: 6,
        ..r
    };
    assert!(matches!(
        reader.get(&other_file, key(3).as_bytes()),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn every_damaged_byte_is_found_by_open_or_scan_and_no_read_returns_a_wrong_value() {
    for compression in [Compression::None, Compression::Zstd { level: 1 }] {
        let values: Vec<Vec<u8>> = values().into_iter().take(4).collect();
        let (file, refs) = build(&values, compression.clone());
        for at in 0..file.len() {
            let mut bad = file.to_vec();
            bad[at] ^= 0x40;
            let bad = Bytes::from(bad);
            let Ok(reader) = open(&bad) else { continue };
            assert!(
                reader.iter().any(|r| r.is_err()),
                "byte {at} flipped and the scan found nothing"
            );
            for (i, r) in refs.iter().enumerate() {
                if let Ok(v) = reader.get(r, key(i).as_bytes()) {
                    assert_eq!(v, values[i], "byte {at} flipped: a wrong value for key {i}");
                }
            }
        }
    }
}

#[test]
fn a_file_cut_short_does_not_open() {
    let (file, _) = build(&values(), Compression::None);
    for len in 0..file.len() {
        let e = open(&file.slice(..len)).unwrap_err();
        assert!(e.is_corruption(), "cut at {len}: {e}");
    }
}

#[test]
fn oversized_records_are_refused_by_the_builder() {
    let mut b = BlobFileBuilder::new(Vec::new(), 0, Compression::None).unwrap();
    let huge = vec![0u8; (64 << 20) + 1];
    assert!(matches!(b.add(&huge, b"v"), Err(Error::InvalidArgument(_))));
    assert_eq!(b.blob_count(), 0);
}

proptest! {
    #[test]
    fn any_bytes_open_and_scan_without_panicking(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        splice in any::<bool>(),
    ) {
        // Half the cases start from a real file, with the bytes written over
        // its middle, so that the header and footer pass and the records
        // are what is damaged.
        let bytes = if splice {
            let (file, _) = build(&values()[..3], Compression::None);
            let mut f = file.to_vec();
            let at = 24.min(f.len());
            let end = (at + bytes.len()).min(f.len().saturating_sub(32)).max(at);
            f.splice(at..end, bytes.iter().copied().take(end - at));
            Bytes::from(f)
        } else {
            Bytes::from(bytes)
        };
        if let Ok(reader) = open(&bytes) {
            for r in reader.iter().take(1000) {
                let _ = r;
            }
        }
    }
}
